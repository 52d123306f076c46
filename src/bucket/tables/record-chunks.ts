/**
 * The only SQL on `record_chunks`: rows of packed record descriptors (see ../record-chunks.ts for
 * the format) with the staged bytes of those not yet sealed. Chunks of an entry cover disjoint
 * time ranges, so the chunk holding a timestamp is one seek on (entry_id, min_ts).
 */

import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `record_chunks` to the object of the new name. */
export const RECORD_CHUNKS_COPY: TableCopySpec = {
  table: "record_chunks",
  key: ["id"],
  columns: ["id", "entry_id", "min_ts", "max_ts", "record_count", "descriptors", "payload"],
};

/** A chunk's bounds and size, without its descriptors or bytes. */
export interface ChunkBounds {
  id: number;
  min_ts: number;
  max_ts: number;
  record_count: number;
  payload_bytes: number;
}

export interface ChunkHead extends ChunkBounds {
  /** Encoded descriptors. */
  descriptors: string;
}

/** The entry's last chunk; descriptors and bytes only when the caller may append to it. */
export interface ChunkTail {
  id: number;
  min_ts: number;
  max_ts: number;
  descriptors: string | null;
  payload: ArrayBuffer | null;
}

/** A chunk's new content; `payload` undefined leaves the stored bytes as they are. */
export interface ChunkContent {
  minTs: number;
  maxTs: number;
  recordCount: number;
  descriptors: string;
  payload?: Uint8Array | null;
}

/** Rows as their queries select them (mapped types, so they fit the `exec` row constraint). */
type Selected<T> = { [K in keyof T]: T[K] };

const BOUNDS = "id, min_ts, max_ts, record_count, coalesce(length(payload), 0) AS payload_bytes";
const HEAD = `${BOUNDS}, descriptors`;
/** Descriptor fields (see ../record-chunks.ts): [7] is the location, [8] an own object's key. */
const OWN_OBJECT_LOCATION = 2;

export class RecordChunksTable {
  constructor(private readonly sql: SqlStorage) {}

  /** The chunk whose range starts at or before `ts` (the only one that can hold it). */
  atOrBefore(entryId: number, ts: number): ChunkHead | undefined {
    return this.sql
      .exec<Selected<ChunkHead>>(
        `SELECT ${HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts <= ? ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        ts,
      )
      .toArray()[0];
  }

  boundsAtOrBefore(entryId: number, ts: number): ChunkBounds | undefined {
    return this.sql
      .exec<Selected<ChunkBounds>>(
        `SELECT ${BOUNDS} FROM record_chunks WHERE entry_id = ? AND min_ts <= ? ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        ts,
      )
      .toArray()[0];
  }

  /** Start of the first chunk after `ts`, if any. */
  nextStartAfter(entryId: number, ts: number): number | undefined {
    return this.sql
      .exec<{ min_ts: number }>(
        "SELECT min_ts FROM record_chunks WHERE entry_id = ? AND min_ts > ? ORDER BY min_ts LIMIT 1",
        entryId,
        ts,
      )
      .toArray()[0]?.min_ts;
  }

  descriptors(id: number): string {
    return this.sql.exec<{ descriptors: string }>("SELECT descriptors FROM record_chunks WHERE id = ?", id).one().descriptors;
  }

  payload(id: number): ArrayBuffer | null {
    return (
      this.sql.exec<{ payload: ArrayBuffer | null }>("SELECT payload FROM record_chunks WHERE id = ?", id).toArray()[0]
        ?.payload ?? null
    );
  }

  /** `size` staged bytes at `offset` of a chunk's payload. */
  stagedSlice(id: number, offset: number, size: number): ArrayBuffer | undefined {
    return (
      this.sql
        .exec<{ bytes: ArrayBuffer | null }>(
          "SELECT substr(payload, ?, ?) AS bytes FROM record_chunks WHERE id = ?",
          offset + 1,
          size,
          id,
        )
        .toArray()[0]?.bytes ?? undefined
    );
  }

  /** Chunks starting in [from, to], ascending. */
  startingIn(entryId: number, from: number, to: number): ChunkHead[] {
    return this.sql
      .exec<Selected<ChunkHead>>(
        `SELECT ${HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts >= ? AND min_ts <= ? ORDER BY min_ts`,
        entryId,
        from,
        to,
      )
      .toArray();
  }

  /** Up to `limit` chunks starting in (after, before), ascending. */
  startingBetween(entryId: number, after: number, before: number, limit: number): ChunkHead[] {
    return this.sql
      .exec<Selected<ChunkHead>>(
        `SELECT ${HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts > ? AND min_ts < ? ORDER BY min_ts LIMIT ?`,
        entryId,
        after,
        before,
        limit,
      )
      .toArray();
  }

  last(entryId: number): ChunkHead | undefined {
    return this.sql
      .exec<Selected<ChunkHead>>(`SELECT ${HEAD} FROM record_chunks WHERE entry_id = ? ORDER BY min_ts DESC LIMIT 1`, entryId)
      .toArray()[0];
  }

  /** The last chunk, with its content only if `records` more records of `bytes` staged bytes still fit the limits. */
  tail(entryId: number, records: number, maxRecords: number, bytes: number, maxBytes: number): ChunkTail | undefined {
    const appendable = "record_count + ?2 <= ?3 AND coalesce(length(payload), 0) + ?4 <= ?5";
    return this.sql
      .exec<{ id: number; min_ts: number; max_ts: number; descriptors: string | null; payload: ArrayBuffer | null }>(
        `SELECT id, min_ts, max_ts, CASE WHEN ${appendable} THEN descriptors END AS descriptors,
           CASE WHEN ${appendable} THEN payload END AS payload
         FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        records,
        maxRecords,
        bytes,
        maxBytes,
      )
      .toArray()[0];
  }

  all(entryId: number): Iterable<ChunkHead> {
    return this.sql.exec<Selected<ChunkHead>>(`SELECT ${HEAD} FROM record_chunks WHERE entry_id = ? ORDER BY min_ts`, entryId);
  }

  /** Oldest and latest timestamp over an entry's chunks. */
  timeBounds(entryId: number): { oldest: number | null; latest: number | null } {
    return this.sql
      .exec<{ oldest: number | null; latest: number | null }>(
        `SELECT (SELECT min_ts FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts LIMIT 1) AS oldest,
           (SELECT max_ts FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts DESC LIMIT 1) AS latest`,
        entryId,
      )
      .one();
  }

  /** Keys of the records of an entry that have objects of their own. */
  ownObjectKeysOf(entryId: number): string[] {
    return this.sql
      .exec<{ key: string | null }>(
        `SELECT json_extract(d.value, '$[8]') AS key FROM record_chunks c, json_each(c.descriptors) d
         WHERE c.entry_id = ? AND json_extract(d.value, '$[7]') = ${OWN_OBJECT_LOCATION}`,
        entryId,
      )
      .toArray()
      .flatMap((row) => (row.key ? [row.key] : []));
  }

  insert(entryId: number, content: ChunkContent): void {
    this.sql.exec(
      "INSERT INTO record_chunks (entry_id, min_ts, max_ts, record_count, descriptors, payload) VALUES (?, ?, ?, ?, ?, ?)",
      entryId,
      content.minTs,
      content.maxTs,
      content.recordCount,
      content.descriptors,
      content.payload ?? null,
    );
  }

  /**
   * Rewrites a chunk. min_ts is written only when it changed, so the (entry_id, min_ts) index entry
   * is not rewritten (a billed row); the payload only when given.
   */
  update(id: number, oldMinTs: number, content: ChunkContent): void {
    const setMin = content.minTs !== oldMinTs;
    const setPayload = content.payload !== undefined;
    const columns = [...(setMin ? ["min_ts = ?"] : []), "max_ts = ?", "record_count = ?", "descriptors = ?"];
    const values: unknown[] = [...(setMin ? [content.minTs] : []), content.maxTs, content.recordCount, content.descriptors];
    if (setPayload) {
      columns.push("payload = ?");
      values.push(content.payload ?? null);
    }
    this.sql.exec(`UPDATE record_chunks SET ${columns.join(", ")} WHERE id = ?`, ...values, id);
  }

  delete(id: number): void {
    this.sql.exec("DELETE FROM record_chunks WHERE id = ?", id);
  }

  deleteOfEntry(entryId: number): void {
    this.sql.exec("DELETE FROM record_chunks WHERE entry_id = ?", entryId);
  }

  clear(): void {
    this.sql.exec("DELETE FROM record_chunks");
  }
}
