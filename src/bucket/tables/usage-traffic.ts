/**
 * The only SQL on `usage_traffic`: this bucket's traffic per usage window and entry, kept until the
 * window has ended and its sums are in D1. Synchronous, so a write adds its traffic inside its
 * own transaction.
 */

export interface TrafficDelta {
  writeBytes: number;
  recordsWritten: number;
  readBytes: number;
  recordsRead: number;
}

/** One ended window's sums, as D1's usage_windows row holds them. */
export interface WindowTraffic {
  window_end_ms: number;
  write_bytes: number;
  read_bytes: number;
  records_written: number;
  records_read: number;
  written_entries: number;
  read_entries: number;
}

export class UsageTrafficTable {
  constructor(private readonly sql: SqlStorage) {}

  add(windowEndMs: number, entry: string, delta: TrafficDelta): void {
    this.sql.exec(
      `INSERT INTO usage_traffic (window_end_ms, entry, write_bytes, records_written, read_bytes, records_read)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (window_end_ms, entry) DO UPDATE SET write_bytes = write_bytes + excluded.write_bytes,
         records_written = records_written + excluded.records_written, read_bytes = read_bytes + excluded.read_bytes,
         records_read = records_read + excluded.records_read`,
      windowEndMs,
      entry,
      delta.writeBytes,
      delta.recordsWritten,
      delta.readBytes,
      delta.recordsRead,
    );
  }

  /** Sums of the windows that ended at or before `nowMs`, oldest first. */
  ended(nowMs: number): WindowTraffic[] {
    return this.sql
      .exec<{
        window_end_ms: number;
        write_bytes: number;
        read_bytes: number;
        records_written: number;
        records_read: number;
        written_entries: number;
        read_entries: number;
      }>(
        `SELECT window_end_ms, sum(write_bytes) AS write_bytes, sum(read_bytes) AS read_bytes,
           sum(records_written) AS records_written, sum(records_read) AS records_read,
           sum(records_written > 0) AS written_entries, sum(records_read > 0) AS read_entries
         FROM usage_traffic WHERE window_end_ms <= ? GROUP BY window_end_ms ORDER BY window_end_ms`,
        nowMs,
      )
      .toArray();
  }

  /** The end of the oldest window held, or null. */
  oldestEnd(): number | null {
    return this.sql.exec<{ end_ms: number | null }>("SELECT min(window_end_ms) AS end_ms FROM usage_traffic").one().end_ms;
  }

  has(windowEndMs: number): boolean {
    return this.sql.exec("SELECT 1 FROM usage_traffic WHERE window_end_ms = ? LIMIT 1", windowEndMs).toArray().length > 0;
  }

  deleteWindow(windowEndMs: number): void {
    this.sql.exec("DELETE FROM usage_traffic WHERE window_end_ms = ?", windowEndMs);
  }

  clear(): void {
    this.sql.exec("DELETE FROM usage_traffic");
  }
}
