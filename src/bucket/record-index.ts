/**
 * The record index of one bucket: entries, blocks, the packed record chunks (see record-chunks.ts)
 * and streamed uploads in flight, composed from their table modules. No SQL here: the chunk
 * merge engine and the stats bookkeeping are logic over the tables. Synchronous, so callers
 * compose a whole write inside one `transactionSync`. Entry and block stats are maintained
 * incrementally: a batch of records updates each touched chunk, block and entry once.
 */

import { parentEntries } from "../model/entry-names";
import type { Labels } from "../model/records";
import { READ_GRACE_MS } from "../storage/blocks";
import { ChunkStore } from "./chunk-store";
import { type Descriptor, findTs, Loc, lowerBound, type PackedRecord } from "./record-chunks";
import type { BucketTables } from "./tables";
import type { BlockRow } from "./tables/blocks";
import type { EntryDelta, EntryRef } from "./tables/entries";
import type { PendingRow } from "./tables/pending-records";
import type { ChunkHead } from "./tables/record-chunks";

export { parentEntries } from "../model/entry-names";
export type { Labels } from "../model/records";
export type { BlockRow } from "./tables/blocks";
export type { EntryDelta, EntryRef } from "./tables/entries";
export type { PendingRow } from "./tables/pending-records";

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

export interface WriteEntry extends EntryRef {
  /** The entry's latest ready timestamp: a record after it cannot be a duplicate. */
  latestTs: number | null;
  hasPending: boolean;
}

const LOCATION_NAMES = ["staged", "block", "object"] as const;

export class RecordIndex {
  private readonly chunks: ChunkStore;

  constructor(private readonly tables: BucketTables) {
    this.chunks = new ChunkStore(tables.chunks);
  }

  // ---- entries ---------------------------------------------------------------------------

  entry(name: string): EntryRef | undefined {
    return this.tables.entries.byName(name);
  }

  entryById(id: number): EntryRef | undefined {
    return this.tables.entries.byId(id);
  }

  renameEntry(id: number, newName: string): void {
    this.tables.entries.rename(id, newName);
  }

  /** Returns the entry, creating it and its missing parents. */
  ensureEntry(name: string): EntryRef {
    const existing = this.entry(name); // most writes: no INSERT at all (each costs a billed row)
    if (existing) return existing;
    for (const parent of parentEntries(name)) this.tables.entries.insertIfMissing(parent);
    this.tables.entries.insertIfMissing(name);
    const entry = this.entry(name);
    if (!entry) throw new Error(`entry ${name} vanished`);
    return entry;
  }

  /** An entry with what a write checks first: its latest ready timestamp and whether uploads are pending in it. */
  entryForWrite(name: string): WriteEntry | undefined {
    const row = this.tables.entries.latestOf(name);
    return row && { id: row.id, name: row.name, latestTs: row.latestRecord, hasPending: this.tables.pending.hasAny(row.id) };
  }

  subtree(name: string): EntryRef[] {
    return this.tables.entries.subtree(name);
  }

  /** Adds a batch of new records to an entry's stats (one row written per entry per batch). */
  addToEntry(entryId: number, delta: EntryDelta): void {
    this.tables.entries.addRecords(entryId, delta);
  }

  /** Sets an entry's time bounds from its chunks (after records were removed). */
  private refreshTimeBounds(entryId: number): void {
    const bounds = this.tables.chunks.timeBounds(entryId);
    this.tables.entries.setTimeBounds(entryId, bounds.oldest, bounds.latest);
  }

  // ---- records ---------------------------------------------------------------------------

  /** Adds new records (ascending, none of their timestamps taken) to an entry's chunks. */
  insertRecords(entryId: number, incoming: PackedRecord[]): void {
    this.chunks.insertRecords(entryId, incoming);
  }

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
      if (!keys.has(blockId)) keys.set(blockId, this.tables.blocks.objectKey(blockId));
      return keys.get(blockId) ?? null;
    };
  }

  pending(entryId: number, ts: number): PendingRow | undefined {
    return this.tables.pending.get(entryId, ts);
  }

  /** True when a ready record has this timestamp. */
  hasReady(entryId: number, ts: number): boolean {
    const chunk = this.tables.chunks.boundsAtOrBefore(entryId, ts);
    return chunk !== undefined && chunk.max_ts >= ts && findTs(this.chunks.descriptorsOf(chunk.id), ts) >= 0;
  }

  /** The record at `ts`: ready, or pending while a streamed upload holds it. */
  record(entryId: number, ts: number): RecordRow | undefined {
    const chunk = this.tables.chunks.atOrBefore(entryId, ts);
    if (chunk && chunk.max_ts >= ts) {
      const records = this.chunks.decode(chunk);
      const found = records[findTs(records, ts)];
      if (found) return this.toRow(entryId, chunk.id, found, this.blockKeys());
    }
    const pending = this.pending(entryId, ts);
    return pending ? pendingToRow(pending) : undefined;
  }

  latestReady(entryId: number): RecordRow | undefined {
    const chunk = this.tables.chunks.last(entryId);
    if (!chunk) return undefined;
    const records = this.chunks.decode(chunk);
    const last = records[records.length - 1];
    return last ? this.toRow(entryId, chunk.id, last, this.blockKeys()) : undefined;
  }

  /** The staged bytes of a record row (location 'staged'). */
  stagedPayload(row: Pick<RecordRow, "chunk_id" | "object_offset" | "size">): ArrayBuffer | undefined {
    if (row.size === 0) return new ArrayBuffer(0);
    return this.tables.chunks.stagedSlice(row.chunk_id, row.object_offset, row.size);
  }

  /** Ready records of an entry in [start, stop), ascending, at most `limit`. */
  readyRange(entryId: number, start: number, stop: number, limit: number): RecordRow[] {
    const rows: RecordRow[] = [];
    const blockKey = this.blockKeys();
    const collect = (chunk: ChunkHead) => {
      const records = this.chunks.decode(chunk);
      for (let i = lowerBound(records, start); i < records.length && rows.length < limit; i++) {
        const d = records[i]!;
        if (d.ts >= stop) return;
        rows.push(this.toRow(entryId, chunk.id, d, blockKey));
      }
    };
    const first = this.tables.chunks.atOrBefore(entryId, start);
    let after = start - 1;
    if (first && first.max_ts >= start) {
      collect(first);
      after = first.min_ts;
    }
    while (rows.length < limit) {
      const next = this.tables.chunks.startingBetween(entryId, after, stop, 2);
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
    for (const chunk of this.tables.chunks.all(entryId)) {
      for (const d of this.chunks.decode(chunk)) if (match(d.labels)) rows.push(this.toRow(entryId, chunk.id, d, blockKey));
    }
    return rows;
  }

  /** Replaces labels and descriptor lengths of ready records of one entry, keeping its size exact. */
  updateLabels(entryId: number, updates: { ts: number; labels: Labels; meta_len: number }[]): void {
    if (updates.length === 0) return;
    const byTs = new Map(updates.map((update) => [update.ts, update]));
    const tss = updates.map((update) => update.ts);
    let sizeDelta = 0;
    this.chunks.editRange(entryId, Math.min(...tss), Math.max(...tss), (d) => {
      const update = byTs.get(d.ts);
      if (!update) return undefined;
      sizeDelta += update.meta_len - d.meta_len;
      return { ...d, labels: update.labels, meta_len: update.meta_len };
    });
    if (sizeDelta !== 0) this.tables.entries.addSize(entryId, sizeDelta);
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
      const dropped = this.chunks.editRange(entryId, sorted[0]!, sorted[sorted.length - 1]!, (d) =>
        tss.has(d.ts) ? null : undefined,
      );
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
        this.dropBlock(block, nowMs);
      } else {
        const content = list.reduce((sum, d) => sum + d.size, 0);
        const staged = list.reduce((sum, d) => sum + (d.loc === Loc.Staged ? d.size : 0), 0);
        this.tables.blocks.shrink(block.id, list.length, content, staged);
      }
    }
    this.tables.entries.removeRecords(entryId, size, dropped.length);
    this.refreshTimeBounds(entryId);
  }

  private dropBlock(block: BlockRow, nowMs: number): void {
    this.tables.blocks.delete(block.id);
    this.tables.entries.addBlocks(block.entry_id, -1);
    if (block.object_key) this.collectGarbage(block.object_key, nowMs + READ_GRACE_MS);
  }

  // ---- pending uploads -------------------------------------------------------------------

  insertPending(row: PendingRow): void {
    this.tables.pending.insert(row);
  }

  pendingByKey(objectKey: string): PendingRow | undefined {
    return this.tables.pending.byKey(objectKey);
  }

  deletePending(entryId: number, ts: number): void {
    this.tables.pending.delete(entryId, ts);
  }

  expiredPending(nowMs: number, limit: number): PendingRow[] {
    return this.tables.pending.expired(nowMs, limit);
  }

  nextLeaseExpiry(): number | null {
    return this.tables.pending.nextLeaseExpiry();
  }

  // ---- blocks ----------------------------------------------------------------------------

  block(id: number): BlockRow | undefined {
    return this.tables.blocks.get(id);
  }

  openBlock(entryId: number): BlockRow | undefined {
    return this.tables.blocks.open(entryId);
  }

  startBlock(entryId: number, nowMs: number): BlockRow {
    const id = this.tables.blocks.insertOpen(entryId, nowMs);
    this.tables.entries.addBlocks(entryId, 1);
    const block = this.block(id);
    if (!block) throw new Error("block vanished");
    return block;
  }

  /** Writes the counters a batch accumulated on a block (one row per block per batch). */
  saveBlockCounters(block: BlockRow): void {
    this.tables.blocks.saveCounters(block);
  }

  /** Closes a block for appends: sealed at once when it has nothing staged, else awaits sealing. */
  closeBlock(block: BlockRow): void {
    block.state = block.staged_bytes > 0 ? "full" : "sealed";
    this.tables.blocks.setState(block.id, block.state);
  }

  /** Blocks whose staged records should be written to R2 now: closed ones and idle open ones. */
  blocksToSeal(idleBeforeMs: number, limit: number): BlockRow[] {
    return this.tables.blocks.toSeal(idleBeforeMs, limit);
  }

  /** The earliest time an open block with staged data becomes idle, or null. */
  nextIdleSealAt(idleMs: number): number | null {
    const backlog = this.tables.blocks.sealBacklog();
    if (backlog.full > 0) return Date.now();
    return backlog.idleSince === null ? null : backlog.idleSince + idleMs;
  }

  /** The staged records of a block, ascending by timestamp, with their bytes (for sealing). */
  stagedRecordsOf(block: BlockRow): { ts: number; size: number; bytes: Uint8Array }[] {
    if (block.min_ts === null || block.max_ts === null) return [];
    return this.chunks.stagedOfBlock(block.entry_id, block.id, block.min_ts, block.max_ts);
  }

  /**
   * Points a block's staged records at its sealed object (`offsets` by timestamp) and drops their
   * staged bytes. Records removed meanwhile are simply absent; the block becomes 'sealed'.
   */
  commitSeal(block: BlockRow, key: string, objectBytes: number, offsets: Map<number, number>): void {
    if (block.min_ts !== null && block.max_ts !== null) {
      this.chunks.editRange(block.entry_id, block.min_ts, block.max_ts, (d) => {
        const offset = d.block_id === block.id && d.loc === Loc.Staged ? offsets.get(d.ts) : undefined;
        return offset === undefined ? undefined : { ...d, loc: Loc.Block, key: null, offset };
      });
    }
    this.tables.blocks.markSealed(block.id, key, objectBytes);
  }

  /** Marks a block without staged records sealed (nothing to write). */
  sealEmpty(blockId: number): void {
    this.tables.blocks.markSealedWithoutObject(blockId);
  }

  /** Oldest block of the bucket that FIFO may evict ($meta entries are never evicted). */
  oldestEvictableBlock(): BlockRow | undefined {
    return this.tables.blocks.oldestWithRecords(this.tables.entries.attachmentIds());
  }

  /** Removes every record of a block (FIFO eviction): the block and its object go. */
  evictBlock(block: BlockRow, nowMs: number): void {
    const dropped =
      block.min_ts === null || block.max_ts === null
        ? []
        : this.chunks.editRange(block.entry_id, block.min_ts, block.max_ts, (d) => (d.block_id === block.id ? null : undefined));
    if (dropped.length === 0) {
      // Counters said records were here, the chunks disagree: drop the block so eviction progresses.
      this.dropBlock(block, nowMs);
      return;
    }
    this.forgetRecords(block.entry_id, dropped, nowMs);
  }

  // ---- garbage and whole entries -------------------------------------------------------------

  collectGarbage(key: string, notBeforeMs: number): void {
    this.tables.garbage.add(key, notBeforeMs);
  }

  forgetGarbage(key: string): void {
    this.tables.garbage.forget(key);
  }

  /** Deletes entries with all their records, uploads in flight and blocks; their objects become garbage. */
  dropEntries(entries: EntryRef[], nowMs: number): void {
    for (const entry of entries) {
      const keys = [...this.tables.chunks.ownObjectKeysOf(entry.id), ...this.tables.blocks.objectKeysOf(entry.id)];
      for (const key of keys) this.collectGarbage(key, nowMs + READ_GRACE_MS);
      // An upload in flight may still be writing its object: keep its intent until the lease ends,
      // or a put landing after an early delete would leave an orphan nobody tracks.
      for (const upload of this.tables.pending.ofEntry(entry.id)) {
        this.collectGarbage(upload.object_key, Math.max(upload.lease_expires_at_ms, nowMs + READ_GRACE_MS));
      }
      this.tables.chunks.deleteOfEntry(entry.id);
      this.tables.pending.deleteOfEntry(entry.id);
      this.tables.blocks.deleteOfEntry(entry.id);
      this.tables.entries.delete(entry.id);
    }
  }

  /** Bytes counted against the quota: stored size of every entry plus uploads in flight. */
  usedBytes(): number {
    return this.tables.entries.totalSize() + this.tables.pending.reservedBytes();
  }

  /** Bytes of `$meta` entries: FIFO never evicts them, so they are checked only against each other. */
  attachmentBytes(): number {
    return this.tables.entries.attachmentSize();
  }

  /** Bytes FIFO eviction could free: everything but `$meta` entries. */
  evictableBytes(): number {
    return this.tables.entries.evictableSize();
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
