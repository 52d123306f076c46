/**
 * Typed SQL over entries, blocks and the record index. Synchronous, so callers compose a whole
 * write (duplicate check, quota, block choice, insert, stats) inside one `transactionSync`.
 * Entry stats (size, counts, oldest/latest) are maintained incrementally; removal recomputes the
 * time bounds through the (entry_id, ts) primary key.
 */
import { READ_GRACE_MS } from "../storage/blocks";
import { isMetaEntry } from "./bucket-store";

export type Labels = Record<string, string>;

export interface RecordRow {
  entry_id: number;
  ts: number;
  block_id: number;
  state: "pending" | "ready";
  size: number;
  content_type: string;
  labels: string;
  meta_len: number;
  block_begin: number;
  location: "staged" | "block" | "object";
  object_key: string | null;
  object_offset: number | null;
  lease_expires_at_ms: number | null;
}

export interface BlockRow {
  id: number;
  entry_id: number;
  state: "open" | "full" | "sealed";
  record_count: number;
  content_bytes: number;
  staged_bytes: number;
  object_key: string | null;
  object_bytes: number | null;
  min_ts: number | null;
  max_ts: number | null;
  opened_at_ms: number;
  last_write_at_ms: number;
}

export interface EntryRef {
  id: number;
  name: string;
}

type Row<T> = T & Record<string, SqlStorageValue>;

/** The parent entries `a` and `a/b` of `a/b/c`, which ReductStore creates implicitly. */
export function parentEntries(name: string): string[] {
  const parts = name.split("/");
  return parts.slice(1).map((_, index) => parts.slice(0, index + 1).join("/"));
}

/** SQL condition selecting an entry and all its descendants (names never contain LIKE-safe text). */
export const SUBTREE_SQL = "(name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/')";

export class RecordIndex {
  constructor(private readonly sql: SqlStorage) {}

  // ---- entries ---------------------------------------------------------------------------

  entry(name: string): EntryRef | undefined {
    return this.sql.exec<Row<EntryRef>>("SELECT id, name FROM entries WHERE name = ?", name).toArray()[0];
  }

  /** Returns the entry, creating it and its missing parents. */
  ensureEntry(name: string): EntryRef {
    const existing = this.entry(name); // most writes: no INSERT at all (each costs a billed row)
    if (existing) return existing;
    for (const parent of parentEntries(name)) this.sql.exec("INSERT OR IGNORE INTO entries (name) VALUES (?)", parent);
    this.sql.exec("INSERT OR IGNORE INTO entries (name) VALUES (?)", name);
    const entry = this.entry(name);
    if (!entry) throw new Error(`entry ${name} vanished`);
    return entry;
  }

  subtree(name: string): EntryRef[] {
    return this.sql.exec<Row<EntryRef>>(`SELECT id, name FROM entries WHERE ${SUBTREE_SQL} ORDER BY name`, name).toArray();
  }

  // ---- records ---------------------------------------------------------------------------

  record(entryId: number, ts: number): RecordRow | undefined {
    return this.sql.exec<Row<RecordRow>>("SELECT * FROM records WHERE entry_id = ? AND ts = ?", entryId, ts).toArray()[0];
  }

  latestReady(entryId: number): RecordRow | undefined {
    return this.sql
      .exec<Row<RecordRow>>("SELECT * FROM records WHERE entry_id = ? AND state = 'ready' ORDER BY ts DESC LIMIT 1", entryId)
      .toArray()[0];
  }

  stagedPayload(entryId: number, ts: number): ArrayBuffer | undefined {
    return this.sql
      .exec<{ payload: ArrayBuffer }>("SELECT payload FROM staged_payloads WHERE entry_id = ? AND ts = ?", entryId, ts)
      .toArray()[0]?.payload;
  }

  /** Ready records of an entry in [start, stop), ascending, at most `limit`. */
  readyRange(entryId: number, start: number, stop: number, limit: number): RecordRow[] {
    return this.sql
      .exec<Row<RecordRow>>(
        "SELECT * FROM records WHERE entry_id = ? AND ts >= ? AND ts < ? AND state = 'ready' ORDER BY ts LIMIT ?",
        entryId,
        start,
        stop,
        limit,
      )
      .toArray();
  }

  // ---- blocks ----------------------------------------------------------------------------

  block(id: number): BlockRow | undefined {
    return this.sql.exec<Row<BlockRow>>("SELECT * FROM blocks WHERE id = ?", id).toArray()[0];
  }

  openBlock(entryId: number): BlockRow | undefined {
    return this.sql.exec<Row<BlockRow>>("SELECT * FROM blocks WHERE entry_id = ? AND state = 'open'", entryId).toArray()[0];
  }

  startBlock(entryId: number, nowMs: number): BlockRow {
    this.sql.exec(
      "INSERT INTO blocks (entry_id, state, opened_at_ms, last_write_at_ms) VALUES (?, 'open', ?, ?)",
      entryId,
      nowMs,
      nowMs,
    );
    this.sql.exec("UPDATE entries SET block_count = block_count + 1 WHERE id = ?", entryId);
    const id = this.sql.exec<{ id: number }>("SELECT last_insert_rowid() AS id").one().id;
    const block = this.block(id);
    if (!block) throw new Error("block vanished");
    return block;
  }

  /** Closes a block for appends: sealed at once when it has nothing staged, else awaits sealing. */
  closeBlock(block: BlockRow): void {
    this.sql.exec("UPDATE blocks SET state = ? WHERE id = ?", block.staged_bytes > 0 ? "full" : "sealed", block.id);
  }

  /** Blocks whose staged records should be written to R2 now: closed ones and idle open ones. */
  blocksToSeal(idleBeforeMs: number, limit: number): BlockRow[] {
    return this.sql
      .exec<Row<BlockRow>>(
        `SELECT * FROM blocks WHERE state <> 'sealed' AND (state = 'full' OR (staged_bytes > 0 AND last_write_at_ms <= ?))
         ORDER BY last_write_at_ms LIMIT ?`,
        idleBeforeMs,
        limit,
      )
      .toArray();
  }

  /** The earliest time an open block with staged data becomes idle, or null. */
  nextIdleSealAt(idleMs: number): number | null {
    const row = this.sql
      .exec<{ full: number; idle: number | null }>(
        `SELECT (SELECT count(*) FROM blocks WHERE state <> 'sealed' AND state = 'full') AS full,
                (SELECT min(last_write_at_ms) FROM blocks WHERE state <> 'sealed' AND state = 'open' AND staged_bytes > 0) AS idle`,
      )
      .one();
    if (row.full > 0) return Date.now();
    return row.idle === null ? null : row.idle + idleMs;
  }

  stagedRecordsOf(blockId: number): { entry_id: number; ts: number; size: number; payload: ArrayBuffer }[] {
    return this.sql
      .exec<{ entry_id: number; ts: number; size: number; payload: ArrayBuffer }>(
        `SELECT r.entry_id, r.ts, r.size, p.payload FROM records r
         JOIN staged_payloads p ON p.entry_id = r.entry_id AND p.ts = r.ts
         WHERE r.block_id = ? AND r.location = 'staged' ORDER BY r.ts`,
        blockId,
      )
      .toArray();
  }

  /** Oldest block of the bucket that FIFO may evict ($meta entries are never evicted). */
  oldestEvictableBlock(): BlockRow | undefined {
    return this.sql
      .exec<Row<BlockRow>>(
        `SELECT b.* FROM blocks b JOIN entries e ON e.id = b.entry_id
         WHERE b.record_count > 0 AND e.name <> '$meta' AND e.name NOT LIKE '%/$meta'
         ORDER BY b.min_ts, b.id LIMIT 1`,
      )
      .toArray()[0];
  }

  readyRecordsOfBlock(blockId: number): RecordRow[] {
    return this.sql
      .exec<Row<RecordRow>>("SELECT * FROM records WHERE block_id = ? AND state = 'ready' ORDER BY ts", blockId)
      .toArray();
  }

  // ---- writes ----------------------------------------------------------------------------

  /** Adds a ready record to `block` and to its entry's stats. Returns the block after the add. */
  insertReady(
    block: BlockRow,
    record: Omit<RecordRow, "block_id" | "state" | "lease_expires_at_ms">,
    payload: ArrayBuffer | null,
    nowMs: number,
  ): BlockRow {
    this.sql.exec(
      `INSERT INTO records (entry_id, ts, block_id, state, size, content_type, labels, meta_len, block_begin, location, object_key, object_offset)
       VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?)`,
      record.entry_id,
      record.ts,
      block.id,
      record.size,
      record.content_type,
      record.labels,
      record.meta_len,
      record.block_begin,
      record.location,
      record.object_key,
      record.object_offset,
    );
    if (payload !== null) {
      this.sql.exec("INSERT INTO staged_payloads (entry_id, ts, payload) VALUES (?, ?, ?)", record.entry_id, record.ts, payload);
    }
    const staged = record.location === "staged" ? record.size : 0;
    this.sql.exec(
      `UPDATE blocks SET record_count = record_count + 1, content_bytes = content_bytes + ?1, staged_bytes = staged_bytes + ?2,
         min_ts = min(coalesce(min_ts, ?3), ?3), max_ts = max(coalesce(max_ts, ?3), ?3), last_write_at_ms = ?4
       WHERE id = ?5`,
      record.size,
      staged,
      record.ts,
      nowMs,
      block.id,
    );
    this.sql.exec(
      `UPDATE entries SET size = size + ?1, record_count = record_count + 1,
         oldest_record = min(coalesce(oldest_record, ?2), ?2), latest_record = max(coalesce(latest_record, ?2), ?2)
       WHERE id = ?3`,
      record.size + record.meta_len,
      record.ts,
      record.entry_id,
    );
    const updated = this.block(block.id);
    if (!updated) throw new Error("block vanished");
    return updated;
  }

  /** Replaces a record's labels and descriptor length, keeping entry size exact. */
  updateLabels(entryId: number, ts: number, labels: string, metaLen: number, oldMetaLen: number): void {
    this.sql.exec("UPDATE records SET labels = ?, meta_len = ? WHERE entry_id = ? AND ts = ?", labels, metaLen, entryId, ts);
    this.sql.exec("UPDATE entries SET size = size + ? WHERE id = ?", metaLen - oldMetaLen, entryId);
  }

  /**
   * Removes one record from the index and from its block and entry stats. Objects no record needs
   * any more are queued as garbage, deleted after a grace period for reads in flight.
   */
  removeRecord(row: RecordRow, nowMs: number): void {
    this.sql.exec("DELETE FROM records WHERE entry_id = ? AND ts = ?", row.entry_id, row.ts);
    if (row.location === "staged")
      this.sql.exec("DELETE FROM staged_payloads WHERE entry_id = ? AND ts = ?", row.entry_id, row.ts);
    if (row.location === "object" && row.object_key) this.collectGarbage(row.object_key, nowMs + READ_GRACE_MS);
    if (row.state === "pending") return;

    const block = this.block(row.block_id);
    if (block) {
      if (block.record_count <= 1) {
        this.sql.exec("DELETE FROM blocks WHERE id = ?", block.id);
        this.sql.exec("UPDATE entries SET block_count = block_count - 1 WHERE id = ?", block.entry_id);
        if (block.object_key) this.collectGarbage(block.object_key, nowMs + READ_GRACE_MS);
      } else {
        this.sql.exec(
          "UPDATE blocks SET record_count = record_count - 1, content_bytes = content_bytes - ?, staged_bytes = staged_bytes - ? WHERE id = ?",
          row.size,
          row.location === "staged" ? row.size : 0,
          block.id,
        );
      }
    }
    this.sql.exec(
      "UPDATE entries SET size = size - ?, record_count = record_count - 1 WHERE id = ?",
      row.size + row.meta_len,
      row.entry_id,
    );
    this.refreshTimeBounds(row.entry_id);
  }

  refreshTimeBounds(entryId: number): void {
    this.sql.exec(
      `UPDATE entries SET
         oldest_record = (SELECT min(ts) FROM records WHERE entry_id = ?1 AND state = 'ready'),
         latest_record = (SELECT max(ts) FROM records WHERE entry_id = ?1 AND state = 'ready')
       WHERE id = ?1`,
      entryId,
    );
  }

  collectGarbage(key: string, notBeforeMs: number): void {
    this.sql.exec(
      "INSERT INTO r2_garbage (key, not_before_ms) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET not_before_ms = excluded.not_before_ms",
      key,
      notBeforeMs,
    );
  }

  forgetGarbage(key: string): void {
    this.sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
  }

  /** Deletes entries (already emptied of records) and their blocks' objects. */
  dropEntries(entries: EntryRef[], nowMs: number): void {
    for (const entry of entries) {
      for (const row of this.sql.exec<{ object_key: string | null }>(
        "SELECT object_key FROM records WHERE entry_id = ? AND location = 'object'",
        entry.id,
      )) {
        if (row.object_key) this.collectGarbage(row.object_key, nowMs + READ_GRACE_MS);
      }
      for (const block of this.sql.exec<{ object_key: string | null }>(
        "SELECT object_key FROM blocks WHERE entry_id = ?",
        entry.id,
      )) {
        if (block.object_key) this.collectGarbage(block.object_key, nowMs + READ_GRACE_MS);
      }
      this.sql.exec("DELETE FROM records WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM staged_payloads WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM blocks WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM entries WHERE id = ?", entry.id);
    }
  }

  /** Bytes counted against the quota: stored size of every entry plus uploads in flight. */
  usedBytes(): number {
    const row = this.sql
      .exec<{ size: number | null; pending: number }>(
        // Pending bytes are summed from the pending rows themselves (a counter drifted when entries
        // were removed under an upload); the partial index keeps this cheap.
        "SELECT (SELECT sum(size) FROM entries) AS size, (SELECT coalesce(sum(size), 0) FROM records WHERE state = 'pending') AS pending",
      )
      .one();
    return (row.size ?? 0) + (row.pending ?? 0);
  }

  static isMeta(name: string): boolean {
    return isMetaEntry(name);
  }
}
