/**
 * Copying a table's rows page by page, for bucket rename. Each table module declares its own copy
 * spec (table, key and every column by name), so SQL names only what the module owns, and rows
 * arriving over RPC can only fill declared columns.
 */

export interface TableCopySpec {
  table: string;
  /** Primary-key columns, in order; pages are cut by row-value comparison on them. */
  key: readonly string[];
  /** Every column of the table; a test compares this with the live schema. */
  columns: readonly string[];
}

export type CopiedRow = Record<string, SqlStorageValue>;

export interface ExportPage {
  rows: CopiedRow[];
  /** Key values of the last row, to pass back as the next cursor; null when the table is done. */
  next: SqlStorageValue[] | null;
}

export const EXPORT_PAGE_ROWS = 1000;
export const EXPORT_PAGE_BYTES = 8 * 1024 * 1024;

function valueBytes(value: SqlStorageValue): number {
  if (value instanceof ArrayBuffer) return value.byteLength;
  return typeof value === "string" ? value.length : 8;
}

export function exportPage(sql: SqlStorage, spec: TableCopySpec, after: SqlStorageValue[] | null): ExportPage {
  if (after && after.length !== spec.key.length) throw new Error(`cursor of ${spec.table} has ${after.length} values`);
  const key = spec.key.join(", ");
  const where = after ? `WHERE (${key}) > (${spec.key.map(() => "?").join(", ")})` : "";
  const cursor = sql.exec<CopiedRow>(
    `SELECT ${spec.columns.join(", ")} FROM ${spec.table} ${where} ORDER BY ${key} LIMIT ${EXPORT_PAGE_ROWS}`,
    ...(after ?? []),
  );
  const rows: CopiedRow[] = [];
  let bytes = 0;
  for (const row of cursor) {
    rows.push(row);
    for (const column of spec.columns) bytes += valueBytes(row[column] ?? null);
    if (bytes >= EXPORT_PAGE_BYTES) break;
  }
  const last = rows[rows.length - 1];
  const full = rows.length === EXPORT_PAGE_ROWS || bytes >= EXPORT_PAGE_BYTES;
  return { rows, next: last && full ? spec.key.map((column) => last[column] ?? null) : null };
}

/** Inserts copied rows; idempotent, since a retried copy may meet rows it copied before. */
export function importRows(sql: SqlStorage, spec: TableCopySpec, rows: readonly CopiedRow[]): void {
  const statement = `INSERT OR REPLACE INTO ${spec.table} (${spec.columns.join(", ")}) VALUES (${spec.columns.map(() => "?").join(", ")})`;
  for (const row of rows) {
    for (const column of Object.keys(row)) {
      if (!spec.columns.includes(column)) throw new Error(`copied row of ${spec.table} has undeclared column ${column}`);
    }
    sql.exec(statement, ...spec.columns.map((column) => row[column] ?? null));
  }
}
