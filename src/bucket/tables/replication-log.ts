/**
 * The only SQL on `replication_log`: writes and label updates of replicated entries, appended in
 * the write's own transaction and deleted once the target acknowledged them.
 */
import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `replication_log` to the object of the new name. */
export const REPLICATION_LOG_COPY: TableCopySpec = {
  table: "replication_log",
  key: ["seq"],
  columns: ["seq", "replication", "entry", "ts", "kind", "logged_at_ms"],
};

export type LogKind = "write" | "labels";

export type LogRow = {
  seq: number;
  entry: string;
  ts: number;
  kind: LogKind;
};

export class ReplicationLogTable {
  constructor(private readonly sql: SqlStorage) {}

  append(replication: string, entry: string, ts: number, kind: LogKind, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO replication_log (replication, entry, ts, kind, logged_at_ms) VALUES (?, ?, ?, ?, ?)",
      replication,
      entry,
      ts,
      kind,
      nowMs,
    );
  }

  /** The entry of the oldest row of a replication, or undefined when its log is empty. */
  oldestEntry(replication: string): string | undefined {
    return this.sql
      .exec<{ entry: string }>("SELECT entry FROM replication_log WHERE replication = ? ORDER BY seq LIMIT 1", replication)
      .toArray()[0]?.entry;
  }

  /**
   * Each entry with rows and its oldest row's seq, in entry order: one index seek per entry
   * (replication_log_by_entry), however many rows an entry holds.
   */
  entryFronts(replication: string): { entry: string; first: number }[] {
    const fronts: { entry: string; first: number }[] = [];
    let after: string | null = null;
    for (;;) {
      const row: { entry: string; seq: number } | undefined = (
        after === null
          ? this.sql.exec<{ entry: string; seq: number }>(
              "SELECT entry, seq FROM replication_log WHERE replication = ? ORDER BY entry, seq LIMIT 1",
              replication,
            )
          : this.sql.exec<{ entry: string; seq: number }>(
              "SELECT entry, seq FROM replication_log WHERE replication = ? AND entry > ? ORDER BY entry, seq LIMIT 1",
              replication,
              after,
            )
      ).toArray()[0];
      if (!row) return fronts;
      fronts.push({ entry: row.entry, first: row.seq });
      after = row.entry;
    }
  }

  /** The oldest rows of one entry, in log order. */
  front(replication: string, entry: string, limit: number): LogRow[] {
    return this.sql
      .exec<LogRow>(
        "SELECT seq, entry, ts, kind FROM replication_log WHERE replication = ? AND entry = ? ORDER BY seq LIMIT ?",
        replication,
        entry,
        limit,
      )
      .toArray();
  }

  /** Deletes these rows; returns how many were still there. */
  delete(replication: string, seqs: readonly number[]): number {
    let deleted = 0;
    for (const seq of seqs) {
      deleted += this.sql
        .exec("DELETE FROM replication_log WHERE replication = ? AND seq = ? RETURNING seq", replication, seq)
        .toArray().length;
    }
    return deleted;
  }

  /** Drops the `count` oldest rows of a replication (the log is full); returns how many went. */
  dropOldest(replication: string, count: number): number {
    return this.sql
      .exec(
        "DELETE FROM replication_log WHERE seq IN (SELECT seq FROM replication_log WHERE replication = ? ORDER BY seq LIMIT ?) RETURNING seq",
        replication,
        count,
      )
      .toArray().length;
  }

  count(replication: string): number {
    return (
      this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM replication_log WHERE replication = ?", replication).toArray()[0]
        ?.n ?? 0
    );
  }

  /** An entry rename: the unsent rows of the entry and its descendants take their new names. */
  renameEntries(from: string, to: string): void {
    this.sql.exec(
      "UPDATE replication_log SET entry = ? || substr(entry, length(?) + 1) WHERE entry = ? OR substr(entry, 1, length(?) + 1) = ?",
      to,
      from,
      from,
      from,
      `${from}/`,
    );
  }

  removeReplication(replication: string): void {
    this.sql.exec("DELETE FROM replication_log WHERE replication = ?", replication);
  }

  clear(): void {
    this.sql.exec("DELETE FROM replication_log");
  }
}
