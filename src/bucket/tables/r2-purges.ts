/**
 * The only SQL on `r2_purges`: deleted bucket generations whose D1 registry row (if still that
 * generation's) and R2 prefix the alarm removes.
 */

import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `r2_purges` to the object of the new name. */
export const R2_PURGES_COPY: TableCopySpec = {
  table: "r2_purges",
  key: ["generation"],
  columns: ["generation", "name", "queued_at_ms", "purge_objects"],
};

export interface PurgeRow {
  generation: string;
  name: string;
  /** 0 when the generation moved to another name by a rename: only its registry row goes. */
  purgeObjects: boolean;
}

export class R2PurgesTable {
  constructor(private readonly sql: SqlStorage) {}

  queue(name: string, generation: string, nowMs: number, purgeObjects: boolean): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO r2_purges (generation, name, queued_at_ms, purge_objects) VALUES (?, ?, ?, ?)",
      generation,
      name,
      nowMs,
      purgeObjects ? 1 : 0,
    );
  }

  list(): PurgeRow[] {
    return this.sql
      .exec<{ generation: string; name: string; purge_objects: number }>(
        "SELECT generation, name, purge_objects FROM r2_purges ORDER BY queued_at_ms",
      )
      .toArray()
      .map((row) => ({ generation: row.generation, name: row.name, purgeObjects: row.purge_objects !== 0 }));
  }

  finish(generation: string): void {
    this.sql.exec("DELETE FROM r2_purges WHERE generation = ?", generation);
  }
}
