/** The only SQL on `pending_records`: streamed uploads holding their timestamp and quota until committed or expired. */

export interface PendingRow {
  entry_id: number;
  ts: number;
  size: number;
  content_type: string;
  /** JSON object of the record's labels. */
  labels: string;
  object_key: string;
  lease_expires_at_ms: number;
}

const PENDING_COLUMNS = "entry_id, ts, size, content_type, labels, object_key, lease_expires_at_ms";

/** The row as its query selects it (a mapped type, so it fits the `exec` row constraint). */
type SelectedPendingRow = { [K in keyof PendingRow]: PendingRow[K] };

export class PendingRecordsTable {
  constructor(private readonly sql: SqlStorage) {}

  insert(row: PendingRow): void {
    this.sql.exec(
      `INSERT INTO pending_records (${PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.entry_id,
      row.ts,
      row.size,
      row.content_type,
      row.labels,
      row.object_key,
      row.lease_expires_at_ms,
    );
  }

  get(entryId: number, ts: number): PendingRow | undefined {
    return this.sql
      .exec<SelectedPendingRow>(`SELECT ${PENDING_COLUMNS} FROM pending_records WHERE entry_id = ? AND ts = ?`, entryId, ts)
      .toArray()[0];
  }

  byKey(objectKey: string): PendingRow | undefined {
    return this.sql
      .exec<SelectedPendingRow>(`SELECT ${PENDING_COLUMNS} FROM pending_records WHERE object_key = ?`, objectKey)
      .toArray()[0];
  }

  ofEntry(entryId: number): PendingRow[] {
    return this.sql
      .exec<SelectedPendingRow>(`SELECT ${PENDING_COLUMNS} FROM pending_records WHERE entry_id = ?`, entryId)
      .toArray();
  }

  hasAny(entryId: number): boolean {
    return this.sql.exec("SELECT 1 FROM pending_records WHERE entry_id = ? LIMIT 1", entryId).toArray().length > 0;
  }

  expired(nowMs: number, limit: number): PendingRow[] {
    return this.sql
      .exec<SelectedPendingRow>(
        `SELECT ${PENDING_COLUMNS} FROM pending_records WHERE lease_expires_at_ms <= ? LIMIT ?`,
        nowMs,
        limit,
      )
      .toArray();
  }

  nextLeaseExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(lease_expires_at_ms) AS at FROM pending_records").one().at;
  }

  /** Bytes reserved by uploads in flight (counted against a HARD quota). */
  reservedBytes(): number {
    return this.sql.exec<{ pending: number }>("SELECT coalesce(sum(size), 0) AS pending FROM pending_records").one().pending;
  }

  delete(entryId: number, ts: number): void {
    this.sql.exec("DELETE FROM pending_records WHERE entry_id = ? AND ts = ?", entryId, ts);
  }

  deleteOfEntry(entryId: number): void {
    this.sql.exec("DELETE FROM pending_records WHERE entry_id = ?", entryId);
  }

  clear(): void {
    this.sql.exec("DELETE FROM pending_records");
  }
}
