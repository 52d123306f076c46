/**
 * The only code that runs SQL on D1's `usage_windows` table (see migrations/): the traffic of one
 * bucket in one ended usage window, written by the bucket's object and consumed by the `$system`
 * object, which turns the rows into usage records and deletes them.
 */

export interface UsageWindowRow {
  bucket: string;
  window_end_ms: number;
  write_bytes: number;
  read_bytes: number;
  records_written: number;
  records_read: number;
  written_entries: number;
  read_entries: number;
}

const COLUMNS = "bucket, window_end_ms, write_bytes, read_bytes, records_written, records_read, written_entries, read_entries";

/** Writes the final counters of one window; repeating it with the same values changes nothing. */
export function upsertUsageWindow(db: D1Database, row: UsageWindowRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO usage_windows (${COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
       ON CONFLICT (bucket, window_end_ms) DO UPDATE SET write_bytes = excluded.write_bytes,
         read_bytes = excluded.read_bytes, records_written = excluded.records_written,
         records_read = excluded.records_read, written_entries = excluded.written_entries,
         read_entries = excluded.read_entries`,
    )
    .bind(
      row.bucket,
      row.window_end_ms,
      row.write_bytes,
      row.read_bytes,
      row.records_written,
      row.records_read,
      row.written_entries,
      row.read_entries,
    );
}

/** Ends of the windows that ended at or before `cutoffMs` and are not reported yet, oldest first. */
export async function endedUsageWindowEnds(db: D1Database, cutoffMs: number, limit: number): Promise<number[]> {
  const { results } = await db
    .prepare("SELECT DISTINCT window_end_ms FROM usage_windows WHERE window_end_ms <= ?1 ORDER BY window_end_ms LIMIT ?2")
    .bind(cutoffMs, limit)
    .all<{ window_end_ms: number }>();
  return results.map((row) => row.window_end_ms);
}

/** Every bucket's row of one window, by bucket name. */
export async function usageWindowRows(db: D1Database, windowEndMs: number): Promise<UsageWindowRow[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM usage_windows WHERE window_end_ms = ?1 ORDER BY bucket`)
    .bind(windowEndMs)
    .all<UsageWindowRow>();
  return results;
}

/** The end of the oldest window not yet reported, or null when every window is. */
export async function oldestUsageWindowEnd(db: D1Database): Promise<number | null> {
  const row = await db.prepare("SELECT min(window_end_ms) AS end_ms FROM usage_windows").first<{ end_ms: number | null }>();
  return row?.end_ms ?? null;
}

/** Forgets reported rows. */
export async function deleteUsageWindows(db: D1Database, rows: readonly UsageWindowRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.batch(
    rows.map((row) =>
      db.prepare("DELETE FROM usage_windows WHERE bucket = ?1 AND window_end_ms = ?2").bind(row.bucket, row.window_end_ms),
    ),
  );
}
