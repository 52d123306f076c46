/** The only SQL on `r2_garbage`: R2 objects no record points to any more, deleted by the alarm. */

import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `r2_garbage` to the object of the new name. */
export const R2_GARBAGE_COPY: TableCopySpec = {
  table: "r2_garbage",
  key: ["key"],
  columns: ["key", "not_before_ms"],
};

export class R2GarbageTable {
  constructor(private readonly sql: SqlStorage) {}

  /** Queues a key for deletion not before `notBeforeMs` (a later call moves the time). */
  add(key: string, notBeforeMs: number): void {
    this.sql.exec(
      "INSERT INTO r2_garbage (key, not_before_ms) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET not_before_ms = excluded.not_before_ms",
      key,
      notBeforeMs,
    );
  }

  forget(key: string): void {
    this.sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
  }

  /** Keys whose time has come, at most `limit`. */
  due(nowMs: number, limit: number): string[] {
    return this.sql
      .exec<{ key: string }>("SELECT key FROM r2_garbage WHERE not_before_ms <= ? LIMIT ?", nowMs, limit)
      .toArray()
      .map((row) => row.key);
  }

  nextAt(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(not_before_ms) AS at FROM r2_garbage").one().at;
  }
}
