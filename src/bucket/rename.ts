/**
 * Bucket rename moves the object's index to the object addressed by the new name (objects are
 * addressed by bucket name). R2 payloads stay where they are: their keys live under the bucket
 * generation, which travels with the index. Tables are copied in pages keyed by primary key, with
 * a byte budget so staged payloads never make one RPC message too large.
 */

export interface TableSpec {
  table: string;
  /** Primary-key columns, in order; pages are cut by row-value comparison on them. */
  key: readonly string[];
}

/**
 * Every table that belongs to a bucket, in copy order. `bucket` itself is handled separately.
 * Uploads in flight stay behind: their commit goes to the old name and is refused, so a copied
 * reservation would hold its timestamp and quota in the new bucket until its lease ran out. Their
 * objects' intent rows travel with `r2_garbage`, so the new bucket deletes what they leave behind.
 */
export const BUCKET_TABLES: readonly TableSpec[] = [
  { table: "entries", key: ["id"] },
  { table: "blocks", key: ["id"] },
  { table: "record_chunks", key: ["id"] },
  { table: "r2_garbage", key: ["key"] },
  { table: "r2_purges", key: ["generation"] },
];

export type Row = Record<string, SqlStorageValue>;

export interface ExportPage {
  rows: Row[];
  /** Key values of the last row, to pass back as the next cursor; null when the table is done. */
  next: SqlStorageValue[] | null;
}

export const EXPORT_PAGE_ROWS = 1000;
export const EXPORT_PAGE_BYTES = 8 * 1024 * 1024;

export function exportTablePage(sql: SqlStorage, spec: TableSpec, after: SqlStorageValue[] | null): ExportPage {
  const columns = spec.key.join(", ");
  const placeholders = spec.key.map(() => "?").join(", ");
  const where = after ? `WHERE (${columns}) > (${placeholders})` : "";
  const cursor = sql.exec<Row>(
    `SELECT * FROM ${spec.table} ${where} ORDER BY ${columns} LIMIT ${EXPORT_PAGE_ROWS}`,
    ...(after ?? []),
  );
  const rows: Row[] = [];
  let bytes = 0;
  for (const row of cursor) {
    rows.push(row);
    for (const value of Object.values(row)) {
      bytes += value instanceof ArrayBuffer ? value.byteLength : typeof value === "string" ? value.length : 8;
    }
    if (bytes >= EXPORT_PAGE_BYTES) break;
  }
  const last = rows[rows.length - 1];
  const full = rows.length === EXPORT_PAGE_ROWS || bytes >= EXPORT_PAGE_BYTES;
  return { rows, next: last && full ? spec.key.map((column) => last[column] ?? null) : null };
}

/** A rename with no progress for this long is abandoned: both names become usable again. */
export const RENAME_STALE_MS = 60_000;

/** Inserts copied rows; idempotent, since a retried copy may meet rows it copied before. */
export function importRows(sql: SqlStorage, table: string, rows: Row[]): void {
  for (const row of rows) {
    const columns = Object.keys(row);
    sql.exec(
      `INSERT OR REPLACE INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      ...columns.map((column) => row[column] ?? null),
    );
  }
}
