/** The only SQL on `queries`: persisted query cursors, so a query survives the object being evicted. */

export interface QueryRow {
  id: number;
  kind: "entry" | "multi";
  /** JSON array of entry names (kind 'entry') or patterns (kind 'multi'). */
  entries: string;
  start_ts: number | null;
  stop_ts: number | null;
  continuous: number;
  only_metadata: number;
  strict: number;
  when_json: string | null;
  ttl_s: number;
  last_access_ms: number;
  /** JSON {entry name: {after, state}}. */
  cursors: string;
  /** Bumped by every committed batch; a read commits only from the version it read. */
  cursor_version: number;
  finished: number;
  generation: string;
}

export type NewQuery = Omit<QueryRow, "cursors" | "cursor_version" | "finished">;

type SelectedQueryRow = Omit<QueryRow, "kind"> & { kind: string };

const QUERY_COLUMNS = `id, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s,
  last_access_ms, cursors, cursor_version, finished, generation`;

function queryKind(value: string): QueryRow["kind"] {
  if (value === "entry" || value === "multi") return value;
  throw new Error(`query row has unknown kind ${value}`);
}

export class QueriesTable {
  constructor(private readonly sql: SqlStorage) {}

  get(id: number): QueryRow | undefined {
    const row = this.sql.exec<SelectedQueryRow>(`SELECT ${QUERY_COLUMNS} FROM queries WHERE id = ?`, id).toArray()[0];
    return row && { ...row, kind: queryKind(row.kind) };
  }

  count(): number {
    return this.sql.exec<{ open: number }>("SELECT count(*) AS open FROM queries").one().open;
  }

  /** Forgets the least recently read finished query; false when no query is finished. */
  dropOldestFinished(): boolean {
    const cursor = this.sql.exec(
      "DELETE FROM queries WHERE id = (SELECT id FROM queries WHERE finished = 1 ORDER BY last_access_ms, id LIMIT 1)",
    );
    return cursor.rowsWritten > 0;
  }

  insert(query: NewQuery): void {
    this.sql.exec(
      `INSERT INTO queries (id, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms,
         generation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      query.id,
      query.kind,
      query.entries,
      query.start_ts,
      query.stop_ts,
      query.continuous,
      query.only_metadata,
      query.strict,
      query.when_json,
      query.ttl_s,
      query.last_access_ms,
      query.generation,
    );
  }

  touch(id: number, nowMs: number): void {
    this.sql.exec("UPDATE queries SET last_access_ms = ? WHERE id = ?", nowMs, id);
  }

  /**
   * Moves a query's cursors from version `baseVersion`; false when another read moved them first or
   * the query is gone.
   */
  advance(id: number, baseVersion: number, cursors: string, finished: boolean, generation: string): boolean {
    const updated = this.sql.exec(
      `UPDATE queries SET cursors = ?, finished = ?, cursor_version = cursor_version + 1
         WHERE id = ? AND cursor_version = ? AND finished = 0 AND generation = ?`,
      cursors,
      finished ? 1 : 0,
      id,
      baseVersion,
      generation,
    );
    return updated.rowsWritten > 0;
  }

  delete(id: number): void {
    this.sql.exec("DELETE FROM queries WHERE id = ?", id);
  }

  /** Queries of an earlier incarnation of the bucket. */
  deleteOtherGenerations(generation: string): void {
    this.sql.exec("DELETE FROM queries WHERE generation <> ?", generation);
  }

  deleteExpired(nowMs: number): void {
    this.sql.exec("DELETE FROM queries WHERE last_access_ms + ttl_s * 1000 <= ?", nowMs);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(last_access_ms + ttl_s * 1000) AS at FROM queries").one().at;
  }

  clear(): void {
    this.sql.exec("DELETE FROM queries");
  }
}
