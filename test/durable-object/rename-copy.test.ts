/**
 * Rename copies the tables named in BUCKET_TABLES by their declared columns. A migration that adds
 * a table or a column must decide whether it travels with a rename; these tests make it decide.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { BUCKET_TABLES, exportPage, importRows } from "../../src/bucket/rename";
import { uniqueName } from "../helpers/http";

/** Tables that stay with the old name on purpose (see BUCKET_TABLES). */
const STAY_BEHIND = ["bucket", "pending_records", "queries", "renamed_out", "schema_version", "usage_traffic"];

function stubOf(name: string): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}

function liveTables(sql: SqlStorage): string[] {
  return sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
    )
    .toArray()
    .map((row) => row.name);
}

function liveColumns(sql: SqlStorage, table: string): string[] {
  return sql
    .exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table)
    .toArray()
    .map((row) => row.name)
    .sort();
}

describe("rename table copy", () => {
  it("every table of the latest schema is either copied or listed as staying behind", async () => {
    await runInDurableObject(stubOf(uniqueName("copy-tables")), (_instance, state) => {
      const copied = BUCKET_TABLES.map((spec) => spec.table);
      expect([...copied, ...STAY_BEHIND].sort()).toEqual(liveTables(state.storage.sql));
    });
  });

  it.each(BUCKET_TABLES.map((spec) => [spec.table, spec]))(
    "%s: the copy spec declares exactly its live columns",
    async (_table, spec) => {
      await runInDurableObject(stubOf(uniqueName("copy-columns")), (_instance, state) => {
        expect([...spec.columns].sort()).toEqual(liveColumns(state.storage.sql, spec.table));
        for (const column of spec.key) expect(spec.columns).toContain(column);
      });
    },
  );

  it("a row with an undeclared column is refused, and nothing of it is written", async () => {
    await runInDurableObject(stubOf(uniqueName("copy-hostile")), (_instance, state) => {
      const spec = BUCKET_TABLES.find((candidate) => candidate.table === "r2_garbage");
      if (!spec) throw new Error("r2_garbage is copied");
      const hostile = { key: "k", not_before_ms: 1, "not_before_ms) VALUES (1, 1); DROP TABLE entries; --": 1 };
      expect(() => state.storage.transactionSync(() => importRows(state.storage.sql, spec, [hostile]))).toThrow(
        /undeclared column/,
      );
      expect(exportPage(state.storage.sql, spec, null).rows).toEqual([]);
      expect(liveTables(state.storage.sql)).toContain("entries");
    });
  });

  it("pages by key: a second page starts after the cursor, and an import is idempotent", async () => {
    await runInDurableObject(stubOf(uniqueName("copy-pages")), (_instance, state) => {
      const spec = BUCKET_TABLES.find((candidate) => candidate.table === "r2_garbage");
      if (!spec) throw new Error("r2_garbage is copied");
      const rows = Array.from({ length: 1001 }, (_, index) => ({
        key: `k${String(index).padStart(5, "0")}`,
        not_before_ms: index,
      }));
      importRows(state.storage.sql, spec, rows);
      importRows(state.storage.sql, spec, rows.slice(0, 10));
      const first = exportPage(state.storage.sql, spec, null);
      expect(first.rows).toHaveLength(1000);
      expect(first.next).toEqual(["k00999"]);
      const second = exportPage(state.storage.sql, spec, first.next);
      expect(second.rows).toEqual([{ key: "k01000", not_before_ms: 1000 }]);
      expect(second.next).toBeNull();
    });
  });
});
