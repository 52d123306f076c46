/**
 * The bucket object at object level: schema migrations, state across eviction, the R2 purge of a
 * deleted generation by the alarm, the D1 registry row through create/rename/delete, and rename
 * moving settings and entries to the object of the new name.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { LATEST_SCHEMA_VERSION, migrate, SCHEMA_MIGRATIONS, type SchemaMigration } from "../../src/bucket/schema";
import { api, expectError, uniqueName } from "../helpers/http";

const JSON_HEADERS = { "content-type": "application/json" };

function stubOf(name: string): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}

async function ok(response: Response): Promise<void> {
  const text = await response.text();
  expect({ status: response.status, error: response.headers.get("x-reduct-error"), text }).toEqual({
    status: 200,
    error: null,
    text: "",
  });
}

async function createBucket(name: string, settings?: Record<string, unknown>): Promise<void> {
  await ok(await api("POST", `/b/${name}`, { body: settings ? JSON.stringify(settings) : null }));
}

async function renameBucket(oldName: string, newName: string): Promise<void> {
  await ok(await api("PUT", `/b/${oldName}/rename`, { headers: JSON_HEADERS, body: JSON.stringify({ new_name: newName }) }));
}

async function getBucket(name: string): Promise<{
  info: Record<string, unknown>;
  settings: Record<string, unknown>;
  entries: Record<string, unknown>[];
}> {
  const response = await api("GET", `/b/${name}`);
  expect(response.status).toBe(200);
  return response.json();
}

/** Evicts the object: the next call constructs it again from storage only. */
async function evict(stub: DurableObjectStub<BucketObject>): Promise<void> {
  await expect(
    runInDurableObject(stub, (_instance, state) => {
      state.abort("evicted by test");
    }),
  ).rejects.toThrow();
}

async function generationOf(name: string): Promise<string> {
  return runInDurableObject(stubOf(name), (_instance, state) => {
    const rows = state.storage.sql.exec<{ generation: string }>("SELECT generation FROM bucket WHERE id = 1").toArray();
    expect(rows).toHaveLength(1);
    return rows[0]!.generation;
  });
}

interface RegistryRow {
  name: string;
  generation: string;
  status: string;
  is_provisioned: number;
  entry_count: number;
  size: number;
}

async function registryRow(name: string): Promise<RegistryRow | null> {
  return env.DB.prepare("SELECT * FROM buckets WHERE name = ?1").bind(name).first<RegistryRow>();
}

async function putObjects(keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((key) => env.RECORDS.put(key, `payload of ${key}`)));
  }
}

async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.RECORDS.list({ prefix, cursor });
    keys.push(...page.objects.map((object) => object.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Runs the object's alarm (if one is due) until its R2 prefix is empty or the time is up. */
async function runAlarmsUntil(stub: DurableObjectStub<BucketObject>, done: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 15_000;
  while (!(await done())) {
    if (Date.now() > until) throw new Error("condition not reached by the alarm in time");
    const ran = await runDurableObjectAlarm(stub);
    if (!ran) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function tableNames(sql: SqlStorage): string[] {
  return sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
    )
    .toArray()
    .map((row) => row.name);
}

/** Drops every table and view of the object, leaving storage as a never-migrated object's. */
function dropAllTables(sql: SqlStorage): void {
  for (const { name } of sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'view'").toArray()) {
    sql.exec(`DROP VIEW ${name}`);
  }
  for (const table of tableNames(sql)) sql.exec(`DROP TABLE ${table}`);
}

/** The stored schema version; 0 when no migration has run (no row yet). */
function schemaVersion(sql: SqlStorage): number {
  return sql.exec<{ version: number }>("SELECT version FROM schema_version WHERE id = 1").toArray()[0]?.version ?? 0;
}

const BUCKET_TABLES = [
  "blocks",
  "bucket",
  "entries",
  "pending_records",
  "r2_garbage",
  "r2_purges",
  "record_chunks",
  "renamed_out",
  "replication_log",
  "replications",
  "schema_version",
];

describe("schema migrations", () => {
  it("the migration list is consecutive from 1 and LATEST_SCHEMA_VERSION is its last step", () => {
    expect(SCHEMA_MIGRATIONS.map((migration) => migration.version)).toEqual(
      Array.from({ length: SCHEMA_MIGRATIONS.length }, (_, index) => index + 1),
    );
    expect(LATEST_SCHEMA_VERSION).toBe(SCHEMA_MIGRATIONS.length);
    for (const migration of SCHEMA_MIGRATIONS) expect(migration.description.length).toBeGreaterThan(0);
  });

  it("a fresh object reaches LATEST_SCHEMA_VERSION with every table", async () => {
    const stub = stubOf(uniqueName("schema-fresh"));
    await runInDurableObject(stub, (_instance, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
      expect(tableNames(state.storage.sql)).toEqual(expect.arrayContaining(BUCKET_TABLES));
      // Running the migrations again is a no-op.
      expect(migrate(state.storage)).toBe(LATEST_SCHEMA_VERSION);
      expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
    });
  });

  it.each(Array.from({ length: LATEST_SCHEMA_VERSION }, (_, version) => [version]))(
    "an object stored at version %i upgrades to the latest when it is constructed again",
    async (version) => {
      const name = uniqueName("schema-old");
      await runInDurableObject(stubOf(name), (_instance, state) => {
        dropAllTables(state.storage.sql);
        expect(migrate(state.storage, SCHEMA_MIGRATIONS.slice(0, version))).toBe(version);
        expect(schemaVersion(state.storage.sql)).toBe(version);
      });
      await evict(stubOf(name));
      // A stub of an aborted object stays broken: address the object anew, as the edge does.
      await runInDurableObject(stubOf(name), (_instance, state) => {
        expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
        expect(tableNames(state.storage.sql)).toEqual(expect.arrayContaining(BUCKET_TABLES));
      });
    },
  );

  it("version 7 moves a version-6 record index (staged, sealed, own-object, pending records) into chunks", async () => {
    const name = uniqueName("schema-v6");
    const staged = new TextEncoder().encode("staged bytes");
    await runInDurableObject(stubOf(name), (_instance, state) => {
      const sql = state.storage.sql;
      dropAllTables(sql);
      expect(migrate(state.storage, SCHEMA_MIGRATIONS.slice(0, 6))).toBe(6);
      sql.exec(
        `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size)
         VALUES (1, ?, 'gen-v6', 0, 64000000, 1024, 'NONE', 0)`,
        name,
      );
      sql.exec(
        "INSERT INTO entries (id, name, size, record_count, block_count, oldest_record, latest_record) VALUES (1, 'e', 0, 3, 2, 10, 30)",
      );
      sql.exec(
        `INSERT INTO blocks (id, entry_id, state, record_count, content_bytes, staged_bytes, object_key, object_bytes, min_ts, max_ts, opened_at_ms, last_write_at_ms)
         VALUES (1, 1, 'sealed', 2, 110, 0, 'gen-v6/block-1', 100, 10, 20, 0, 0),
                (2, 1, 'open', 1, 12, 12, NULL, NULL, 30, 30, 0, 0)`,
      );
      const insert = `INSERT INTO records (entry_id, ts, block_id, state, size, content_type, labels, meta_len, block_begin, location, object_key, object_offset, lease_expires_at_ms)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
      sql.exec(insert, 1, 10, 1, "ready", 100, "a/b", '{"k":"v"}', 20, 0, "block", "gen-v6/block-1", 0, null);
      sql.exec(insert, 1, 20, 1, "ready", 10, "c/d", "{}", 20, 100, "object", "gen-v6/own-20", 0, null);
      sql.exec(insert, 1, 30, 2, "ready", staged.byteLength, "e/f", "{}", 20, 0, "staged", null, null, null);
      sql.exec(insert, 1, 40, 0, "pending", 5, "g/h", "{}", 0, 0, "object", "gen-v6/pending-40", 0, Date.now() + 600_000);
      sql.exec("INSERT INTO staged_payloads (entry_id, ts, payload) VALUES (1, 30, ?)", staged.buffer);
    });
    await evict(stubOf(name));
    const stub = stubOf(name);
    const sealed = await stub.readRecord("e", 10, true);
    expect(sealed).toMatchObject({
      ok: true,
      record: { ts: 10, size: 100, contentType: "a/b", labels: { k: "v" } },
      body: { kind: "r2", key: "gen-v6/block-1", offset: 0 },
    });
    const own = await stub.readRecord("e", 20, true);
    expect(own).toMatchObject({ ok: true, body: { kind: "r2", key: "gen-v6/own-20", offset: 0 } });
    const inline = await stub.readRecord("e", 30, true);
    if (!inline.ok || inline.body.kind !== "inline") throw new Error(`staged record not inline: ${JSON.stringify(inline)}`);
    expect(new Uint8Array(inline.body.bytes)).toEqual(staged);
    const pending = await stub.readRecord("e", 40, true);
    expect(pending.ok ? null : pending.error.status).toBe(425);
    await runInDurableObject(stub, (_instance, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
      const tables = tableNames(state.storage.sql);
      expect(tables).not.toContain("records");
      expect(tables).not.toContain("staged_payloads");
    });
    // New writes land next to the migrated records.
    const written = await stub.writeRecords([
      { meta: { entry: "e", ts: 25, size: 1, contentType: "x/y", labels: {} }, payload: new Uint8Array([7]).buffer },
    ]);
    expect(written).toMatchObject({ ok: true, outcomes: [{ ok: true }] });
    const merged = await stub.readRecord("e", 25, true);
    expect(merged).toMatchObject({ ok: true, record: { ts: 25, size: 1 } });
    expect((await stub.readRecord("e", 30, true)).ok).toBe(true);
  });

  it("version 8 binds the open queries of a version-7 object to its bucket generation", async () => {
    const name = uniqueName("schema-v7");
    await runInDurableObject(stubOf(name), (_instance, state) => {
      const sql = state.storage.sql;
      dropAllTables(sql);
      expect(migrate(state.storage, SCHEMA_MIGRATIONS.slice(0, 7))).toBe(7);
      sql.exec(
        `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size)
         VALUES (1, ?, 'gen-v7', 0, 64000000, 1024, 'NONE', 0)`,
        name,
      );
      sql.exec(
        "INSERT INTO entries (id, name, size, record_count, block_count, oldest_record, latest_record) VALUES (1, 'e', 0, 0, 0, NULL, NULL)",
      );
      sql.exec(
        `INSERT INTO queries (id, kind, entries, continuous, only_metadata, strict, ttl_s, last_access_ms)
         VALUES (41, 'entry', '["e"]', 0, 0, 0, 600, ?)`,
        Date.now(),
      );
    });
    await evict(stubOf(name));
    const stub = stubOf(name);
    const limits = { maxRecords: 10, maxBytes: 1_000_000, maxMetadataBytes: 16_000, contiguousEntries: false };
    const read = await stub.readQuery(41, { kind: "entry", entry: "e" }, limits, true);
    expect(read).toMatchObject({ ok: true, batch: { empty: true, last: true } });
    await runInDurableObject(stub, (_instance, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
      const row = state.storage.sql.exec<{ generation: string }>("SELECT generation FROM queries WHERE id = 41").one();
      expect(row.generation).toBe("gen-v7");
    });
  });

  it("a new step upgrades an object holding a bucket and keeps its data", async () => {
    const name = uniqueName("schema-upgrade");
    await createBucket(name, { quota_size: 77 });
    const next = LATEST_SCHEMA_VERSION + 1;
    const upgrade: SchemaMigration = {
      version: next,
      description: "test: a new column with a default",
      sql: "ALTER TABLE bucket ADD COLUMN test_note TEXT NOT NULL DEFAULT 'upgraded'",
    };
    await runInDurableObject(stubOf(name), (_instance, state) => {
      expect(migrate(state.storage, [...SCHEMA_MIGRATIONS, upgrade])).toBe(next);
      expect(schemaVersion(state.storage.sql)).toBe(next);
      const row = state.storage.sql.exec<{ name: string; quota_size: number; test_note: string }>("SELECT * FROM bucket").one();
      expect({ name: row.name, quota_size: row.quota_size, test_note: row.test_note }).toEqual({
        name,
        quota_size: 77,
        test_note: "upgraded",
      });
    });
    // The object still serves the bucket after being constructed on the newer schema.
    await evict(stubOf(name));
    expect((await getBucket(name)).settings.quota_size).toBe(77);
  });

  it.each([
    [
      "a gap after the stored version",
      (base: readonly SchemaMigration[]) => [...base, step(base.length + 2)],
      LATEST_SCHEMA_VERSION,
    ],
    ["a list that starts above 1", () => [step(2)], 0],
    ["a list out of order", () => [step(2), step(1)], 0],
  ])("non-consecutive migrations are refused: %s", async (_label, build, versionAfter) => {
    const stub = stubOf(uniqueName("schema-gap"));
    await runInDurableObject(stub, (_instance, state) => {
      if (versionAfter === 0) dropAllTables(state.storage.sql);
      const migrations = build(SCHEMA_MIGRATIONS);
      expect(() => migrate(state.storage, migrations)).toThrow(/must be consecutive/);
      expect(schemaVersion(state.storage.sql)).toBe(versionAfter);
      expect(tableNames(state.storage.sql)).not.toContain("test_step_table");
    });
  });

  it("a failing step rolls back entirely and leaves the version where it was", async () => {
    const stub = stubOf(uniqueName("schema-fail"));
    await runInDurableObject(stub, (_instance, state) => {
      const broken: SchemaMigration = {
        version: LATEST_SCHEMA_VERSION + 1,
        description: "test: fails half way",
        sql: "CREATE TABLE test_half_done (x INTEGER); INSERT INTO table_that_does_not_exist VALUES (1);",
      };
      expect(() => migrate(state.storage, [...SCHEMA_MIGRATIONS, broken])).toThrow();
      expect(schemaVersion(state.storage.sql)).toBe(LATEST_SCHEMA_VERSION);
      expect(tableNames(state.storage.sql)).not.toContain("test_half_done");
    });
  });
});

function step(version: number): SchemaMigration {
  return { version, description: `test step ${version}`, sql: "CREATE TABLE IF NOT EXISTS test_step_table (x INTEGER)" };
}

describe("eviction", () => {
  it("a created bucket, its settings and entries survive eviction", async () => {
    const name = uniqueName("evict");
    await createBucket(name, { quota_type: "FIFO", quota_size: 1234, max_block_records: 5 });
    await runInDurableObject(stubOf(name), (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO entries (name, size, record_count, block_count, oldest_record, latest_record) VALUES ('sensor-1', 40, 1, 1, 1000000, 1000000)",
      );
    });
    const before = await getBucket(name);
    await evict(stubOf(name));
    const after = await getBucket(name);
    expect(after).toStrictEqual(before);
    expect(after.settings).toStrictEqual({
      max_block_size: 64000000,
      max_block_records: 5,
      quota_type: "FIFO",
      quota_size: 1234,
    });
    expect(after.entries.map((entry) => entry.name)).toEqual(["sensor-1"]);
  });

  it("after eviction the bucket can still be updated, renamed and deleted, and the name is free again", async () => {
    const name = uniqueName("evict-ops");
    const renamed = uniqueName("evict-ops-new");
    await createBucket(name);
    await evict(stubOf(name));
    await ok(await api("PUT", `/b/${name}`, { body: '{"quota_size": 9}' }));
    await evict(stubOf(name));
    await renameBucket(name, renamed);
    await evict(stubOf(name));
    await evict(stubOf(renamed));
    expect((await getBucket(renamed)).settings.quota_size).toBe(9);
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
    await ok(await api("DELETE", `/b/${renamed}`));
    await evict(stubOf(renamed));
    await expectError(await api("GET", `/b/${renamed}`), 404, `Bucket '${renamed}' is not found`);
    await createBucket(renamed);
    expect((await getBucket(renamed)).settings.quota_size).toBe(0);
  });

  it("the object knows its bucket name from its id: RPCs without a bucket argument work after eviction", async () => {
    const name = uniqueName("evict-name");
    await createBucket(name);
    await ok(await api("POST", `/b/${name}/e?ts=7`, { headers: { "content-type": "text/plain" }, body: "seven" }));
    await evict(stubOf(name));
    const details = unwrapOk(await stubOf(name).getBucket());
    expect(details.info.name).toBe(name);
    const read = unwrapOk(await stubOf(name).readRecord("e", 7, false));
    expect(read.record).toStrictEqual({ entry: "e", ts: 7, size: 5, contentType: "text/plain", labels: {} });
    // Error messages name the bucket too, from the id alone.
    expect(await stubOf(name).readRecord("missing", 7, false)).toStrictEqual({
      ok: false,
      error: { status: 404, message: `Entry 'missing' not found in bucket '${name}'` },
    });
    await evict(stubOf(name));
    const unknown = uniqueName("evict-name-none");
    expect(await stubOf(unknown).headBucket()).toStrictEqual({
      ok: false,
      error: { status: 404, message: `Bucket '${unknown}' is not found` },
    });
  });

  it("an id that carries no name (idFromString) gets the name from the create call and keeps it across eviction", async () => {
    const name = uniqueName("evict-id-string");
    // A fresh stub per call: a stub of an evicted object stays broken. The name is never used
    // with getByName here, so the runtime has no name for this id.
    const byString = () =>
      env.BUCKETS.get(env.BUCKETS.idFromString(env.BUCKETS.idFromName(name).toString())) as DurableObjectStub<BucketObject>;
    const idName = await runInDurableObject(byString(), (_instance, state) => state.id.name ?? null);
    expect(idName).toBeNull();
    expect(
      await byString().createBucket(name, {
        max_block_size: 64000000,
        max_block_records: 1024,
        quota_type: "NONE",
        quota_size: 0,
      }),
    ).toStrictEqual({ ok: true });
    await evict(byString());
    expect(unwrapOk(await byString().getBucket()).info.name).toBe(name);
    expect(await byString().readRecord("missing", 1, false)).toStrictEqual({
      ok: false,
      error: { status: 404, message: `Entry 'missing' not found in bucket '${name}'` },
    });
    // The rename hand-over names the bucket from the object alone (no bucket row field in the answer).
    expect(await byString().exportRenamePage("no-such-attempt", "entries", null)).toStrictEqual({
      ok: false,
      error: { status: 409, message: `Rename of bucket '${name}' was abandoned; try again` },
    });
    expect((await getBucket(name)).info.name).toBe(name); // and the edge, by name, sees the same bucket
  });
});

function unwrapOk<T extends { ok: boolean }>(result: T): Extract<T, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result as Extract<T, { ok: true }>;
}

describe("delete purges the generation's R2 objects", () => {
  it("the alarm removes every object under <generation>/ and leaves other generations alone", async () => {
    const name = uniqueName("purge");
    await createBucket(name);
    const generation = await generationOf(name);
    const other = crypto.randomUUID();
    const ours = [`${generation}/1/b/1`, `${generation}/1/b/2`, `${generation}/2/r/1000-a`, `${generation}/3/r/5-b`];
    const theirs = [`${other}/1/b/1`, `${other}/2/r/7-c`, `${generation}-not-a-prefix/1/b/1`];
    await putObjects([...ours, ...theirs]);

    await ok(await api("DELETE", `/b/${name}`));
    await runAlarmsUntil(stubOf(name), async () => (await listKeys(`${generation}/`)).length === 0);

    expect(await listKeys(`${generation}/`)).toEqual([]);
    for (const key of theirs) expect(await env.RECORDS.head(key), key).not.toBeNull();
    await runInDurableObject(stubOf(name), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT * FROM r2_purges").toArray()).toEqual([]);
    });
    await env.RECORDS.delete(theirs);
  });

  it("purges more objects than one R2 list/delete page (1000)", async () => {
    const name = uniqueName("purge-many");
    await createBucket(name);
    const generation = await generationOf(name);
    const keys = Array.from({ length: 1010 }, (_, index) => `${generation}/1/r/${index}-x`);
    await putObjects(keys);
    expect((await listKeys(`${generation}/`)).length).toBe(1010);
    await ok(await api("DELETE", `/b/${name}`));
    await runAlarmsUntil(stubOf(name), async () => (await listKeys(`${generation}/`)).length === 0);
    await runInDurableObject(stubOf(name), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT * FROM r2_purges").toArray()).toEqual([]);
    });
  });

  it("a bucket created again under the same name keeps its new objects while the old generation is purged", async () => {
    const name = uniqueName("purge-again");
    await createBucket(name);
    const oldGeneration = await generationOf(name);
    await putObjects([`${oldGeneration}/1/b/1`, `${oldGeneration}/1/b/2`]);
    await ok(await api("DELETE", `/b/${name}`));
    await createBucket(name);
    const newGeneration = await generationOf(name);
    expect(newGeneration).not.toBe(oldGeneration);
    await putObjects([`${newGeneration}/1/b/1`]);

    await runAlarmsUntil(stubOf(name), async () => (await listKeys(`${oldGeneration}/`)).length === 0);
    await runDurableObjectAlarm(stubOf(name));
    expect(await listKeys(`${newGeneration}/`)).toEqual([`${newGeneration}/1/b/1`]);
    expect((await registryRow(name))?.generation).toBe(newGeneration);
    await getBucket(name);
  });
});

describe("the D1 registry row", () => {
  it("appears on create, moves on rename, disappears on delete", async () => {
    const name = uniqueName("registry");
    const renamed = uniqueName("registry-new");
    await createBucket(name);
    const generation = await generationOf(name);
    expect(await registryRow(name)).toMatchObject({
      name,
      generation,
      status: "READY",
      is_provisioned: 0,
      entry_count: 0,
      size: 0,
    });

    await renameBucket(name, renamed);
    expect(await registryRow(name)).toBeNull();
    expect(await registryRow(renamed)).toMatchObject({ name: renamed, generation, status: "READY" });
    expect(await generationOf(renamed)).toBe(generation);

    await ok(await api("DELETE", `/b/${renamed}`));
    expect(await registryRow(renamed)).toBeNull();
    expect(await registryRow(name)).toBeNull();
  });

  it("a stale alarm with unflushed usage cannot resurrect a deleted bucket's row", async () => {
    const name = uniqueName("registry-stale");
    await createBucket(name);
    await runInDurableObject(stubOf(name), async (_instance, state) => {
      state.storage.sql.exec("UPDATE bucket SET stats_version = stats_version + 5 WHERE id = 1");
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    await ok(await api("DELETE", `/b/${name}`));
    expect(await registryRow(name)).toBeNull();
    await runDurableObjectAlarm(stubOf(name));
    await runDurableObjectAlarm(stubOf(name));
    expect(await registryRow(name)).toBeNull();
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
    const listed = await api("GET", "/list");
    expect(((await listed.json()) as { buckets: { name: string }[] }).buckets.map((bucket) => bucket.name)).not.toContain(name);
  });

  it("a stale alarm of the old name cannot resurrect the row after a rename", async () => {
    const name = uniqueName("registry-stale-rename");
    const renamed = uniqueName("registry-stale-renamed");
    await createBucket(name);
    await runInDurableObject(stubOf(name), async (_instance, state) => {
      state.storage.sql.exec("UPDATE bucket SET stats_version = stats_version + 1 WHERE id = 1");
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    await renameBucket(name, renamed);
    await runDurableObjectAlarm(stubOf(name));
    await runDurableObjectAlarm(stubOf(renamed));
    expect(await registryRow(name)).toBeNull();
    expect(await registryRow(renamed)).not.toBeNull();
  });

  it("a stale purge of a deleted generation does not remove the row of the bucket created again", async () => {
    const name = uniqueName("registry-recreate");
    await createBucket(name);
    const oldGeneration = await generationOf(name);
    await ok(await api("DELETE", `/b/${name}`));
    await createBucket(name);
    const newGeneration = await generationOf(name);
    // Make the old generation's purge run again, as after a failed attempt.
    await runInDurableObject(stubOf(name), async (_instance, state) => {
      state.storage.sql.exec(
        "INSERT OR IGNORE INTO r2_purges (generation, name, queued_at_ms) VALUES (?, ?, ?)",
        oldGeneration,
        name,
        Date.now(),
      );
      await state.storage.setAlarm(Date.now());
    });
    await runAlarmsUntil(stubOf(name), async () =>
      runInDurableObject(
        stubOf(name),
        (_instance, state) => state.storage.sql.exec("SELECT * FROM r2_purges").toArray().length === 0,
      ),
    );
    expect((await registryRow(name))?.generation).toBe(newGeneration);
  });
});

describe("D1 outages", () => {
  /** A D1 binding whose every statement fails, as during a D1 outage. */
  const failingDb = {
    prepare() {
      throw new Error("D1 is unavailable (injected by test)");
    },
  } as unknown as D1Database;

  it("a delete whose D1 write fails still frees the name, and the alarm removes the row once D1 is back", async () => {
    const name = uniqueName("d1-down-delete");
    await createBucket(name);
    expect(await registryRow(name)).not.toBeNull();
    await runInDurableObject(stubOf(name), async (instance) => {
      const holder = instance as unknown as { env: typeof env };
      const original = holder.env;
      holder.env = { ...original, DB: failingDb };
      try {
        await instance.deleteBucket().catch(() => undefined);
      } finally {
        holder.env = original;
      }
    });
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
    await runAlarmsUntil(stubOf(name), async () => (await registryRow(name)) === null);
    expect(await registryRow(name)).toBeNull();
  });
});

describe("rename moves the bucket to the object of the new name", () => {
  it("settings and entries move; the old object keeps nothing and the old name is 404", async () => {
    const name = uniqueName("move");
    const renamed = uniqueName("move-new");
    const settings = { max_block_size: 2048, max_block_records: 3, quota_type: "HARD", quota_size: 5000 };
    await createBucket(name, settings);
    await runInDurableObject(stubOf(name), (_instance, state) => {
      state.storage.sql.exec(
        `INSERT INTO entries (name, size, record_count, block_count, oldest_record, latest_record) VALUES
           ('a', 40, 1, 1, 1000000, 1000000), ('b/c', 43, 1, 1, 2000000, 2000000), ('b', 0, 0, 0, NULL, NULL)`,
      );
    });
    const before = await getBucket(name);
    expect(before.entries.map((entry) => entry.name)).toEqual(["a", "b", "b/c"]);

    await renameBucket(name, renamed);
    const after = await getBucket(renamed);
    expect(after.settings).toStrictEqual(settings);
    expect(after.entries).toStrictEqual(before.entries);
    expect(after.info).toStrictEqual({ ...before.info, name: renamed });

    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
    await runInDurableObject(stubOf(name), (_instance, state) => {
      const sql = state.storage.sql;
      expect(sql.exec("SELECT count(*) AS n FROM bucket").one().n).toBe(0);
      expect(sql.exec("SELECT count(*) AS n FROM entries").one().n).toBe(0);
    });
  });

  it("moves more rows than one export page", async () => {
    const name = uniqueName("move-many");
    const renamed = uniqueName("move-many-new");
    await createBucket(name);
    const count = 2345;
    await runInDurableObject(stubOf(name), (_instance, state) => {
      for (let i = 0; i < count; i += 1) {
        state.storage.sql.exec("INSERT INTO entries (name, size, record_count, block_count) VALUES (?, 1, 0, 0)", `e-${i}`);
      }
    });
    await renameBucket(name, renamed);
    await runInDurableObject(stubOf(renamed), (_instance, state) => {
      const row = state.storage.sql
        .exec<{ n: number; size: number }>("SELECT count(*) AS n, sum(size) AS size FROM entries")
        .one();
      expect(row).toEqual({ n: count, size: count });
    });
    expect((await getBucket(renamed)).info.entry_count).toBe(count);
  });

  it("the generation travels with the index, so R2 objects stay readable under it and are not purged", async () => {
    const name = uniqueName("move-r2");
    const renamed = uniqueName("move-r2-new");
    await createBucket(name);
    const generation = await generationOf(name);
    await putObjects([`${generation}/1/b/1`]);
    await renameBucket(name, renamed);
    expect(await generationOf(renamed)).toBe(generation);
    await runDurableObjectAlarm(stubOf(name));
    await runDurableObjectAlarm(stubOf(renamed));
    expect(await listKeys(`${generation}/`)).toEqual([`${generation}/1/b/1`]);
    // Deleting the renamed bucket purges that generation.
    await ok(await api("DELETE", `/b/${renamed}`));
    await runAlarmsUntil(stubOf(renamed), async () => (await listKeys(`${generation}/`)).length === 0);
  });
});
