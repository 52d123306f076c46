/**
 * Typed SQL over entries, blocks, the packed record index (record_chunks, see record-chunks.ts)
 * and streamed uploads in flight (pending_records). Synchronous, so callers compose a whole write
 * inside one `transactionSync`. Entry and block stats are maintained incrementally: a batch of
 * records updates each touched chunk, block and entry once.
 */
import { READ_GRACE_MS } from "../storage/blocks";
import {
  APPEND_MAX_PAYLOAD_BYTES,
  APPEND_MAX_RECORDS,
  type Descriptor,
  decodeDescriptors,
  encodeDescriptors,
  findTs,
  Loc,
  lowerBound,
  type PackedRecord,
  packChunk,
  splitIntoChunks,
  stagedBytesOf,
} from "./record-chunks";

export type Labels = Record<string, string>;

/** One record as the rest of the object sees it (ready: from a chunk; pending: an upload in flight). */
export interface RecordRow {
  entry_id: number;
  ts: number;
  block_id: number;
  state: "pending" | "ready";
  size: number;
  content_type: string;
  labels: Labels;
  meta_len: number;
  block_begin: number;
  location: "staged" | "block" | "object";
  /** Chunk row holding the record (0 for pending records). */
  chunk_id: number;
  object_key: string | null;
  /** Staged: offset in the chunk payload; block: offset in the block object; object: 0. */
  object_offset: number;
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

export interface WriteEntry extends EntryRef {
  /** The entry's latest ready timestamp: a record after it cannot be a duplicate. */
  latestTs: number | null;
  hasPending: boolean;
}

/** A streamed upload holding its timestamp and quota until it commits or its lease ends. */
export interface PendingRow {
  entry_id: number;
  ts: number;
  size: number;
  content_type: string;
  labels: string;
  object_key: string;
  lease_expires_at_ms: number;
}

/** Changes of an entry's stats by one batch of new records. */
export interface EntryDelta {
  size: number;
  records: number;
  minTs: number;
  maxTs: number;
}

interface ChunkHead {
  id: number;
  min_ts: number;
  max_ts: number;
  record_count: number;
  payload_bytes: number;
  descriptors: string;
}

interface LoadedChunk extends ChunkHead {
  records: Descriptor[];
}

type Row<T> = T & Record<string, SqlStorageValue>;

const CHUNK_HEAD = "id, min_ts, max_ts, record_count, coalesce(length(payload), 0) AS payload_bytes, descriptors";
const LOCATION_NAMES = ["staged", "block", "object"] as const;

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

  /** An entry with what a write checks first: its latest ready timestamp and whether uploads are pending in it. */
  entryForWrite(name: string): WriteEntry | undefined {
    const row = this.sql
      .exec<{ id: number; name: string; latest_record: number | null; has_pending: number }>(
        `SELECT id, name, latest_record, EXISTS (SELECT 1 FROM pending_records p WHERE p.entry_id = entries.id) AS has_pending
         FROM entries WHERE name = ?`,
        name,
      )
      .toArray()[0];
    return row && { id: row.id, name: row.name, latestTs: row.latest_record, hasPending: row.has_pending === 1 };
  }

  subtree(name: string): EntryRef[] {
    return this.sql.exec<Row<EntryRef>>(`SELECT id, name FROM entries WHERE ${SUBTREE_SQL} ORDER BY name`, name).toArray();
  }

  /** Adds a batch of new records to an entry's stats (one row written per entry per batch). */
  addToEntry(entryId: number, delta: EntryDelta): void {
    this.sql.exec(
      `UPDATE entries SET size = size + ?1, record_count = record_count + ?2,
         oldest_record = min(coalesce(oldest_record, ?3), ?3), latest_record = max(coalesce(latest_record, ?4), ?4)
       WHERE id = ?5`,
      delta.size,
      delta.records,
      delta.minTs,
      delta.maxTs,
      entryId,
    );
  }

  /** Sets an entry's time bounds from its chunks (after records were removed). */
  refreshTimeBounds(entryId: number): void {
    this.sql.exec(
      `UPDATE entries SET
         oldest_record = (SELECT min_ts FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts LIMIT 1),
         latest_record = (SELECT max_ts FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts DESC LIMIT 1)
       WHERE id = ?1`,
      entryId,
    );
  }

  // ---- chunks ----------------------------------------------------------------------------

  /** The chunk whose range starts at or before `ts` (the only one that can hold it). */
  private chunkAtOrBefore(entryId: number, ts: number): ChunkHead | undefined {
    return this.sql
      .exec<Row<ChunkHead>>(
        `SELECT ${CHUNK_HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts <= ? ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        ts,
      )
      .toArray()[0];
  }

  /** Bounds of the chunk whose range starts at or before `ts` (no descriptors loaded). */
  private boundsAtOrBefore(entryId: number, ts: number): Omit<ChunkHead, "descriptors"> | undefined {
    return this.sql
      .exec<Row<Omit<ChunkHead, "descriptors">>>(
        `SELECT id, min_ts, max_ts, record_count, coalesce(length(payload), 0) AS payload_bytes FROM record_chunks
         WHERE entry_id = ? AND min_ts <= ? ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        ts,
      )
      .toArray()[0];
  }

  private descriptorsOf(chunkId: number): Descriptor[] {
    const json = this.sql.exec<{ descriptors: string }>("SELECT descriptors FROM record_chunks WHERE id = ?", chunkId).one();
    return decodeDescriptors(json.descriptors);
  }

  /** Chunks of an entry whose ranges meet [lo, hi], ascending. */
  private chunksOverlapping(entryId: number, lo: number, hi: number): LoadedChunk[] {
    const first = this.boundsAtOrBefore(entryId, lo);
    const from = first && first.max_ts >= lo ? first.min_ts : lo;
    return this.sql
      .exec<Row<ChunkHead>>(
        `SELECT ${CHUNK_HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts >= ? AND min_ts <= ? ORDER BY min_ts`,
        entryId,
        from,
        hi,
      )
      .toArray()
      .map((head) => ({ ...head, records: decodeDescriptors(head.descriptors) }));
  }

  private payloadOf(chunkId: number): Uint8Array | null {
    const payload = this.sql
      .exec<{ payload: ArrayBuffer | null }>("SELECT payload FROM record_chunks WHERE id = ?", chunkId)
      .toArray()[0]?.payload;
    return payload ? new Uint8Array(payload) : null;
  }

  private insertChunk(entryId: number, records: PackedRecord[]): void {
    const image = packChunk(records);
    const first = image.records[0];
    const last = image.records[image.records.length - 1];
    if (!first || !last) return;
    this.sql.exec(
      "INSERT INTO record_chunks (entry_id, min_ts, max_ts, record_count, descriptors, payload) VALUES (?, ?, ?, ?, ?, ?)",
      entryId,
      first.ts,
      last.ts,
      image.records.length,
      encodeDescriptors(image.records),
      image.payload,
    );
  }

  /** Writes a chunk's new content; an emptied chunk is deleted. */
  private rewriteChunk(chunkId: number, records: PackedRecord[], oldMinTs: number): void {
    const image = packChunk(records);
    const first = image.records[0];
    const last = image.records[image.records.length - 1];
    if (!first || !last) {
      this.sql.exec("DELETE FROM record_chunks WHERE id = ?", chunkId);
      return;
    }
    if (first.ts === oldMinTs) {
      // min_ts unchanged: leave it out, so the (entry_id, min_ts) index entry is not rewritten (a billed row).
      this.sql.exec(
        "UPDATE record_chunks SET max_ts = ?, record_count = ?, descriptors = ?, payload = ? WHERE id = ?",
        last.ts,
        image.records.length,
        encodeDescriptors(image.records),
        image.payload,
        chunkId,
      );
      return;
    }
    this.sql.exec(
      "UPDATE record_chunks SET min_ts = ?, max_ts = ?, record_count = ?, descriptors = ?, payload = ? WHERE id = ?",
      first.ts,
      last.ts,
      image.records.length,
      encodeDescriptors(image.records),
      image.payload,
      chunkId,
    );
  }

  /** A chunk's records with their staged bytes, for rewriting it. */
  private unpack(chunk: LoadedChunk): PackedRecord[] {
    const payload = chunk.records.some((d) => d.loc === Loc.Staged) ? this.payloadOf(chunk.id) : null;
    return chunk.records.map((descriptor) => ({
      descriptor,
      bytes: descriptor.loc === Loc.Staged ? stagedBytesOf(payload, descriptor) : null,
    }));
  }

  /**
   * Adds new records (ascending, none of their timestamps taken) to an entry's chunks: appended to
   * the last chunk while it is small, as new chunks, or merged into chunks whose range they fall in.
   */
  insertRecords(entryId: number, incoming: PackedRecord[]): void {
    const first = incoming[0];
    const last = incoming[incoming.length - 1];
    if (!first || !last) return;
    const incomingBytes = incoming.reduce((sum, record) => sum + (record.bytes?.byteLength ?? 0), 0);
    // The common case in one query: the records come after the entry's last chunk. Its descriptors
    // and bytes are loaded only when the records will be appended to it.
    const appendable = "record_count + ?2 <= ?3 AND coalesce(length(payload), 0) + ?4 <= ?5";
    const tail = this.sql
      .exec<Row<{ id: number; min_ts: number; max_ts: number; descriptors: string | null; payload: ArrayBuffer | null }>>(
        `SELECT id, min_ts, max_ts, CASE WHEN ${appendable} THEN descriptors END AS descriptors,
           CASE WHEN ${appendable} THEN payload END AS payload
         FROM record_chunks WHERE entry_id = ?1 ORDER BY min_ts DESC LIMIT 1`,
        entryId,
        incoming.length,
        APPEND_MAX_RECORDS,
        incomingBytes,
        APPEND_MAX_PAYLOAD_BYTES,
      )
      .toArray()[0];
    if (!tail || tail.max_ts < first.descriptor.ts) {
      if (tail && tail.descriptors !== null) {
        const payload = tail.payload ? new Uint8Array(tail.payload) : null;
        const existing = decodeDescriptors(tail.descriptors).map((descriptor) => ({
          descriptor,
          bytes: descriptor.loc === Loc.Staged ? stagedBytesOf(payload, descriptor) : null,
        }));
        this.rewriteChunk(tail.id, [...existing, ...incoming], tail.min_ts);
      } else {
        for (const part of splitIntoChunks(incoming)) this.insertChunk(entryId, part);
      }
      return;
    }
    const before = this.boundsAtOrBefore(entryId, first.descriptor.ts);
    const next = this.sql
      .exec<{ min_ts: number }>(
        "SELECT min_ts FROM record_chunks WHERE entry_id = ? AND min_ts > ? ORDER BY min_ts LIMIT 1",
        entryId,
        first.descriptor.ts,
      )
      .toArray()[0];
    const inOrder = (!before || before.max_ts < first.descriptor.ts) && (!next || next.min_ts > last.descriptor.ts);
    if (inOrder) {
      // The records fit in a gap between two chunks (or before the first).
      if (
        before &&
        before.record_count + incoming.length <= APPEND_MAX_RECORDS &&
        before.payload_bytes + incomingBytes <= APPEND_MAX_PAYLOAD_BYTES
      ) {
        const loaded = { ...before, descriptors: "", records: this.descriptorsOf(before.id) };
        this.rewriteChunk(before.id, [...this.unpack(loaded), ...incoming], before.min_ts);
        return;
      }
      for (const part of splitIntoChunks(incoming)) this.insertChunk(entryId, part);
      return;
    }
    const overlapping = this.chunksOverlapping(entryId, first.descriptor.ts, last.descriptor.ts);
    // Out of order: merge with the chunks whose range the new records fall into.
    const merged = [...overlapping.flatMap((chunk) => this.unpack(chunk)), ...incoming].sort(
      (a, b) => a.descriptor.ts - b.descriptor.ts,
    );
    // Callers check timestamps first; a duplicate here is a bug, and a 500 beats a corrupt index.
    merged.forEach((record, i) => {
      if (i > 0 && merged[i - 1]!.descriptor.ts === record.descriptor.ts) {
        throw new Error(`index merge met timestamp ${record.descriptor.ts} twice in entry ${entryId}`);
      }
    });
    const parts = splitIntoChunks(merged);
    overlapping.forEach((chunk, i) => {
      const part = parts[i];
      if (part) this.rewriteChunk(chunk.id, part, chunk.min_ts);
      else this.sql.exec("DELETE FROM record_chunks WHERE id = ?", chunk.id);
    });
    for (const part of parts.slice(overlapping.length)) this.insertChunk(entryId, part);
  }

  /**
   * Rewrites the chunks meeting [lo, hi]: `edit` returns a record's new descriptor, or null to drop
   * it (its staged bytes go too). Returns the dropped descriptors.
   */
  private editRange(
    entryId: number,
    lo: number,
    hi: number,
    edit: (d: Descriptor) => Descriptor | null | undefined,
  ): Descriptor[] {
    const dropped: Descriptor[] = [];
    for (const chunk of this.chunksOverlapping(entryId, lo, hi)) {
      let changed = false;
      let bytesChanged = false;
      const kept: Descriptor[] = [];
      for (const descriptor of chunk.records) {
        const next = edit(descriptor);
        if (next === undefined || next === descriptor) {
          kept.push(descriptor);
          continue;
        }
        changed = true;
        if (next === null) {
          dropped.push(descriptor);
          if (descriptor.loc === Loc.Staged) bytesChanged = true;
        } else {
          if (next.loc !== descriptor.loc) bytesChanged = true;
          kept.push(next);
        }
      }
      if (!changed) continue;
      if (bytesChanged || kept.length === 0) {
        const payload = this.payloadOf(chunk.id);
        const oldByTs = new Map(chunk.records.map((d) => [d.ts, d]));
        this.rewriteChunk(
          chunk.id,
          kept.map((descriptor) => {
            const old = oldByTs.get(descriptor.ts);
            const staged = descriptor.loc === Loc.Staged && old ? stagedBytesOf(payload, old) : null;
            return { descriptor, bytes: staged };
          }),
          chunk.min_ts,
        );
      } else {
        // The staged bytes stay as they are: only descriptors changed (labels, or records that are
        // not staged were dropped, which may move the chunk's bounds).
        const minTs = kept[0]!.ts;
        const maxTs = kept[kept.length - 1]!.ts;
        if (minTs === chunk.min_ts) {
          this.sql.exec(
            "UPDATE record_chunks SET max_ts = ?, record_count = ?, descriptors = ? WHERE id = ?",
            maxTs,
            kept.length,
            encodeDescriptors(kept),
            chunk.id,
          );
        } else {
          this.sql.exec(
            "UPDATE record_chunks SET min_ts = ?, max_ts = ?, record_count = ?, descriptors = ? WHERE id = ?",
            minTs,
            maxTs,
            kept.length,
            encodeDescriptors(kept),
            chunk.id,
          );
        }
      }
    }
    return dropped;
  }

  // ---- records ---------------------------------------------------------------------------

  private toRow(entryId: number, chunkId: number, d: Descriptor, blockKey: (blockId: number) => string | null): RecordRow {
    return {
      entry_id: entryId,
      ts: d.ts,
      block_id: d.block_id,
      state: "ready",
      size: d.size,
      content_type: d.content_type,
      labels: d.labels,
      meta_len: d.meta_len,
      block_begin: d.block_begin,
      location: LOCATION_NAMES[d.loc],
      chunk_id: chunkId,
      object_key: d.loc === Loc.Object ? d.key : d.loc === Loc.Block ? blockKey(d.block_id) : null,
      object_offset: d.offset,
      lease_expires_at_ms: null,
    };
  }

  /** Resolves block object keys, each block looked up once per call. */
  private blockKeys(): (blockId: number) => string | null {
    const keys = new Map<number, string | null>();
    return (blockId) => {
      if (!keys.has(blockId)) keys.set(blockId, this.block(blockId)?.object_key ?? null);
      return keys.get(blockId) ?? null;
    };
  }

  pending(entryId: number, ts: number): PendingRow | undefined {
    return this.sql
      .exec<Row<PendingRow>>("SELECT * FROM pending_records WHERE entry_id = ? AND ts = ?", entryId, ts)
      .toArray()[0];
  }

  /** True when a ready record has this timestamp. */
  hasReady(entryId: number, ts: number): boolean {
    const chunk = this.boundsAtOrBefore(entryId, ts);
    return chunk !== undefined && chunk.max_ts >= ts && findTs(this.descriptorsOf(chunk.id), ts) >= 0;
  }

  /** The record at `ts`: ready, or pending while a streamed upload holds it. */
  record(entryId: number, ts: number): RecordRow | undefined {
    const chunk = this.chunkAtOrBefore(entryId, ts);
    if (chunk && chunk.max_ts >= ts) {
      const records = decodeDescriptors(chunk.descriptors);
      const at = findTs(records, ts);
      const found = records[at];
      if (found) return this.toRow(entryId, chunk.id, found, this.blockKeys());
    }
    const pending = this.pending(entryId, ts);
    return pending ? pendingToRow(pending) : undefined;
  }

  latestReady(entryId: number): RecordRow | undefined {
    const chunk = this.sql
      .exec<Row<ChunkHead>>(`SELECT ${CHUNK_HEAD} FROM record_chunks WHERE entry_id = ? ORDER BY min_ts DESC LIMIT 1`, entryId)
      .toArray()[0];
    if (!chunk) return undefined;
    const records = decodeDescriptors(chunk.descriptors);
    const last = records[records.length - 1];
    return last ? this.toRow(entryId, chunk.id, last, this.blockKeys()) : undefined;
  }

  /** The staged bytes of a record row (location 'staged'). */
  stagedPayload(row: Pick<RecordRow, "chunk_id" | "object_offset" | "size">): ArrayBuffer | undefined {
    if (row.size === 0) return new ArrayBuffer(0);
    return (
      this.sql
        .exec<{ bytes: ArrayBuffer | null }>(
          "SELECT substr(payload, ?, ?) AS bytes FROM record_chunks WHERE id = ?",
          row.object_offset + 1,
          row.size,
          row.chunk_id,
        )
        .toArray()[0]?.bytes ?? undefined
    );
  }

  /** Ready records of an entry in [start, stop), ascending, at most `limit`. */
  readyRange(entryId: number, start: number, stop: number, limit: number): RecordRow[] {
    const rows: RecordRow[] = [];
    const blockKey = this.blockKeys();
    const collect = (chunk: ChunkHead) => {
      const records = decodeDescriptors(chunk.descriptors);
      for (let i = lowerBound(records, start); i < records.length && rows.length < limit; i++) {
        const d = records[i]!;
        if (d.ts >= stop) return;
        rows.push(this.toRow(entryId, chunk.id, d, blockKey));
      }
    };
    const first = this.chunkAtOrBefore(entryId, start);
    let after = start - 1;
    if (first && first.max_ts >= start) {
      collect(first);
      after = first.min_ts;
    }
    while (rows.length < limit) {
      const next = this.sql
        .exec<Row<ChunkHead>>(
          `SELECT ${CHUNK_HEAD} FROM record_chunks WHERE entry_id = ? AND min_ts > ? AND min_ts < ? ORDER BY min_ts LIMIT 2`,
          entryId,
          after,
          stop,
        )
        .toArray();
      if (next.length === 0) break;
      for (const chunk of next) {
        if (rows.length >= limit) break;
        collect(chunk);
        after = chunk.min_ts;
      }
    }
    return rows;
  }

  /** Ready records of an entry whose labels pass `match` (small entries: $meta attachments). */
  readyWhere(entryId: number, match: (labels: Labels) => boolean): RecordRow[] {
    const rows: RecordRow[] = [];
    const blockKey = this.blockKeys();
    for (const chunk of this.sql.exec<Row<ChunkHead>>(
      `SELECT ${CHUNK_HEAD} FROM record_chunks WHERE entry_id = ? ORDER BY min_ts`,
      entryId,
    )) {
      for (const d of decodeDescriptors(chunk.descriptors))
        if (match(d.labels)) rows.push(this.toRow(entryId, chunk.id, d, blockKey));
    }
    return rows;
  }

  /** Replaces labels and descriptor lengths of ready records of one entry, keeping its size exact. */
  updateLabels(entryId: number, updates: { ts: number; labels: Labels; meta_len: number }[]): void {
    if (updates.length === 0) return;
    const byTs = new Map(updates.map((update) => [update.ts, update]));
    const tss = updates.map((update) => update.ts);
    let sizeDelta = 0;
    this.editRange(entryId, Math.min(...tss), Math.max(...tss), (d) => {
      const update = byTs.get(d.ts);
      if (!update) return undefined;
      sizeDelta += update.meta_len - d.meta_len;
      return { ...d, labels: update.labels, meta_len: update.meta_len };
    });
    if (sizeDelta !== 0) this.sql.exec("UPDATE entries SET size = size + ? WHERE id = ?", sizeDelta, entryId);
  }

  /**
   * Removes ready records from the index and from their blocks' and entries' stats. Objects no
   * record needs any more are queued as garbage, deleted after a grace period for reads in flight.
   */
  removeRecords(rows: RecordRow[], nowMs: number): void {
    const byEntry = new Map<number, Set<number>>();
    for (const row of rows) {
      if (row.state !== "ready") continue;
      const set = byEntry.get(row.entry_id) ?? new Set<number>();
      byEntry.set(row.entry_id, set);
      set.add(row.ts);
    }
    for (const [entryId, tss] of byEntry) {
      const sorted = [...tss].sort((a, b) => a - b);
      const dropped = this.editRange(entryId, sorted[0]!, sorted[sorted.length - 1]!, (d) => (tss.has(d.ts) ? null : undefined));
      this.forgetRecords(entryId, dropped, nowMs);
    }
  }

  /** Stats and garbage after records left the chunks: blocks shrink or go, the entry shrinks. */
  private forgetRecords(entryId: number, dropped: Descriptor[], nowMs: number): void {
    if (dropped.length === 0) return;
    const byBlock = new Map<number, Descriptor[]>();
    let size = 0;
    for (const d of dropped) {
      size += d.size + d.meta_len;
      if (d.loc === Loc.Object && d.key) this.collectGarbage(d.key, nowMs + READ_GRACE_MS);
      const list = byBlock.get(d.block_id);
      if (list) list.push(d);
      else byBlock.set(d.block_id, [d]);
    }
    for (const [blockId, list] of byBlock) {
      const block = this.block(blockId);
      if (!block) continue;
      if (block.record_count <= list.length) {
        this.sql.exec("DELETE FROM blocks WHERE id = ?", block.id);
        this.sql.exec("UPDATE entries SET block_count = block_count - 1 WHERE id = ?", block.entry_id);
        if (block.object_key) this.collectGarbage(block.object_key, nowMs + READ_GRACE_MS);
      } else {
        const content = list.reduce((sum, d) => sum + d.size, 0);
        const staged = list.reduce((sum, d) => sum + (d.loc === Loc.Staged ? d.size : 0), 0);
        this.sql.exec(
          "UPDATE blocks SET record_count = record_count - ?, content_bytes = content_bytes - ?, staged_bytes = staged_bytes - ? WHERE id = ?",
          list.length,
          content,
          staged,
          block.id,
        );
      }
    }
    this.sql.exec(
      "UPDATE entries SET size = size - ?, record_count = record_count - ? WHERE id = ?",
      size,
      dropped.length,
      entryId,
    );
    this.refreshTimeBounds(entryId);
  }

  // ---- pending uploads -------------------------------------------------------------------

  insertPending(row: PendingRow): void {
    this.sql.exec(
      `INSERT INTO pending_records (entry_id, ts, size, content_type, labels, object_key, lease_expires_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      row.entry_id,
      row.ts,
      row.size,
      row.content_type,
      row.labels,
      row.object_key,
      row.lease_expires_at_ms,
    );
  }

  pendingByKey(objectKey: string): PendingRow | undefined {
    return this.sql.exec<Row<PendingRow>>("SELECT * FROM pending_records WHERE object_key = ?", objectKey).toArray()[0];
  }

  deletePending(entryId: number, ts: number): void {
    this.sql.exec("DELETE FROM pending_records WHERE entry_id = ? AND ts = ?", entryId, ts);
  }

  expiredPending(nowMs: number, limit: number): PendingRow[] {
    return this.sql
      .exec<Row<PendingRow>>("SELECT * FROM pending_records WHERE lease_expires_at_ms <= ? LIMIT ?", nowMs, limit)
      .toArray();
  }

  nextLeaseExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(lease_expires_at_ms) AS at FROM pending_records").one().at;
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

  /** Writes the counters a batch accumulated on a block (one row per block per batch). */
  saveBlockCounters(block: BlockRow): void {
    this.sql.exec(
      `UPDATE blocks SET record_count = ?, content_bytes = ?, staged_bytes = ?, min_ts = ?, max_ts = ?, last_write_at_ms = ?
       WHERE id = ?`,
      block.record_count,
      block.content_bytes,
      block.staged_bytes,
      block.min_ts,
      block.max_ts,
      block.last_write_at_ms,
      block.id,
    );
  }

  /** Closes a block for appends: sealed at once when it has nothing staged, else awaits sealing. */
  closeBlock(block: BlockRow): void {
    block.state = block.staged_bytes > 0 ? "full" : "sealed";
    this.sql.exec("UPDATE blocks SET state = ? WHERE id = ?", block.state, block.id);
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

  /** The staged records of a block, ascending by timestamp, with their bytes (for sealing). */
  stagedRecordsOf(block: BlockRow): { ts: number; size: number; bytes: Uint8Array }[] {
    if (block.min_ts === null || block.max_ts === null) return [];
    const staged: { ts: number; size: number; bytes: Uint8Array }[] = [];
    for (const chunk of this.chunksOverlapping(block.entry_id, block.min_ts, block.max_ts)) {
      const mine = chunk.records.filter((d) => d.block_id === block.id && d.loc === Loc.Staged);
      if (mine.length === 0) continue;
      const payload = this.payloadOf(chunk.id);
      for (const d of mine) staged.push({ ts: d.ts, size: d.size, bytes: stagedBytesOf(payload, d) });
    }
    return staged;
  }

  /**
   * Points a block's staged records at its sealed object (`offsets` by timestamp) and drops their
   * staged bytes. Records removed meanwhile are simply absent; the block becomes 'sealed'.
   */
  commitSeal(block: BlockRow, key: string, objectBytes: number, offsets: Map<number, number>): void {
    if (block.min_ts !== null && block.max_ts !== null) {
      this.editRange(block.entry_id, block.min_ts, block.max_ts, (d) => {
        const offset = d.block_id === block.id && d.loc === Loc.Staged ? offsets.get(d.ts) : undefined;
        return offset === undefined ? undefined : { ...d, loc: Loc.Block, key: null, offset };
      });
    }
    this.sql.exec(
      "UPDATE blocks SET state = 'sealed', object_key = ?, object_bytes = ?, staged_bytes = 0 WHERE id = ?",
      key,
      objectBytes,
      block.id,
    );
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

  /** Removes every record of a block (FIFO eviction): the block and its object go. */
  evictBlock(block: BlockRow, nowMs: number): void {
    const dropped =
      block.min_ts === null || block.max_ts === null
        ? []
        : this.editRange(block.entry_id, block.min_ts, block.max_ts, (d) => (d.block_id === block.id ? null : undefined));
    if (dropped.length === 0) {
      // Counters said records were here, the chunks disagree: drop the block so eviction progresses.
      this.sql.exec("DELETE FROM blocks WHERE id = ?", block.id);
      this.sql.exec("UPDATE entries SET block_count = block_count - 1 WHERE id = ?", block.entry_id);
      if (block.object_key) this.collectGarbage(block.object_key, nowMs + READ_GRACE_MS);
      return;
    }
    this.forgetRecords(block.entry_id, dropped, nowMs);
  }

  // ---- garbage and whole entries -------------------------------------------------------------

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

  /** Deletes entries with all their records, uploads in flight and blocks; their objects become garbage. */
  dropEntries(entries: EntryRef[], nowMs: number): void {
    for (const entry of entries) {
      const keys = this.sql.exec<{ key: string | null }>(
        `SELECT json_extract(d.value, '$[8]') AS key FROM record_chunks c, json_each(c.descriptors) d
         WHERE c.entry_id = ? AND json_extract(d.value, '$[7]') = ${Loc.Object}
         UNION ALL SELECT object_key FROM blocks WHERE entry_id = ?1`,
        entry.id,
      );
      for (const { key } of keys) if (key) this.collectGarbage(key, nowMs + READ_GRACE_MS);
      // An upload in flight may still be writing its object: keep its intent until the lease ends,
      // or a put landing after an early delete would leave an orphan nobody tracks.
      const uploads = this.sql.exec<{ object_key: string; lease_expires_at_ms: number }>(
        "SELECT object_key, lease_expires_at_ms FROM pending_records WHERE entry_id = ?",
        entry.id,
      );
      for (const upload of uploads) {
        this.collectGarbage(upload.object_key, Math.max(upload.lease_expires_at_ms, nowMs + READ_GRACE_MS));
      }
      this.sql.exec("DELETE FROM record_chunks WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM pending_records WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM blocks WHERE entry_id = ?", entry.id);
      this.sql.exec("DELETE FROM entries WHERE id = ?", entry.id);
    }
  }

  /** Bytes counted against the quota: stored size of every entry plus uploads in flight. */
  usedBytes(): number {
    const row = this.sql
      .exec<{ size: number | null; pending: number }>(
        "SELECT (SELECT sum(size) FROM entries) AS size, (SELECT coalesce(sum(size), 0) FROM pending_records) AS pending",
      )
      .one();
    return (row.size ?? 0) + (row.pending ?? 0);
  }

  /** Bytes of `$meta` entries: FIFO never evicts them, so they are checked only against each other. */
  attachmentBytes(): number {
    return (
      this.sql
        .exec<{ size: number | null }>("SELECT sum(size) AS size FROM entries WHERE name = '$meta' OR name LIKE '%/$meta'")
        .one().size ?? 0
    );
  }

  /** Bytes FIFO eviction could free: everything but `$meta` entries. */
  evictableBytes(): number {
    return (
      this.sql
        .exec<{ size: number | null }>("SELECT sum(size) AS size FROM entries WHERE name <> '$meta' AND name NOT LIKE '%/$meta'")
        .one().size ?? 0
    );
  }
}

export function pendingToRow(row: PendingRow): RecordRow {
  return {
    entry_id: row.entry_id,
    ts: row.ts,
    block_id: 0,
    state: "pending",
    size: row.size,
    content_type: row.content_type,
    labels: JSON.parse(row.labels),
    meta_len: 0,
    block_begin: 0,
    location: "object",
    chunk_id: 0,
    object_key: row.object_key,
    object_offset: 0,
    lease_expires_at_ms: row.lease_expires_at_ms,
  };
}
