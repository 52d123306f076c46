/**
 * Record operations of the bucket object, as synchronous functions over its SQLite index: each
 * runs inside one `transactionSync`, so a timestamp and quota are reserved, or a record becomes
 * visible, atomically — before any await on R2. Expected failures are returned, not thrown.
 */
import { fail } from "../errors";
import { isMetaEntry } from "../model/entry-names";
import type { ErrorInfo, ItemOutcome, RecordMeta, UploadTicket } from "../model/records";
import { isBlockFull, needsNewBlock, SEAL_LEASE_MS, uploadLeaseMs } from "../storage/blocks";
import { decideQuota } from "../storage/quota";
import { recordObjectKey } from "../storage/r2";
import { recordMetaLength } from "../storage/record-meta";
import { bucketSettings } from "./bucket-store";
import { Loc, type PackedRecord } from "./record-chunks";
import { stillBeingWritten } from "./record-errors";
import type { RecordIndex, WriteEntry } from "./record-index";
import type { ReplicationJournal } from "./replications";
import type { BlockRow } from "./tables/blocks";
import type { BucketRow } from "./tables/bucket-row";
import type { EntryDelta, EntryRef } from "./tables/entries";
import type { PendingRow } from "./tables/pending-records";

export type { ItemOutcome, LabelChanges, RecordMeta, UploadTicket } from "../model/records";
export { entryNotFound, recordNotFound, stillBeingWritten } from "./record-errors";

export interface OpsContext {
  index: RecordIndex;
  bucket: BucketRow;
  nowMs: number;
  /** Logs acknowledged writes and label updates for replication, in the same transaction. */
  journal?: ReplicationJournal;
}

export interface OpsEffects {
  /** Blocks that filled up and should be sealed now. */
  blocksToSeal: number[];
  usageChanged: boolean;
  /** The write's transaction marked the usage change already (or found it marked): no other mark. */
  statsMarked: boolean;
  /** Payload bytes and records written per entry: the usage traffic of this write. */
  written: Map<string, { bytes: number; records: number }>;
}

/** A small record written at once, a large one reserved before its upload, or committed after it. */
type WritePhase = "write" | "reserve" | "commit";

const recordExists = (ts: number) => fail(409, `A record with timestamp ${ts} already exists`);

/** ReductStore's attachment rules for `$meta` entries. */
function checkMetaWrite(meta: RecordMeta): ItemOutcome {
  if (!isMetaEntry(meta.entry)) return { ok: true };
  if (meta.labels.key === undefined) return fail(422, `System entry '${meta.entry}' records must contain label 'key'`);
  if (meta.labels.remove === "true")
    return fail(422, `System entry '${meta.entry}' records can't be written with label 'remove=true'`);
  return { ok: true };
}

/** At least the descriptor bytes a record adds to the bucket's size, wherever in a block it lands. */
function descriptorBound(meta: RecordMeta): number {
  const farOffset = Number.MAX_SAFE_INTEGER;
  return recordMetaLength({
    ts: meta.ts,
    begin: farOffset,
    end: farOffset,
    labels: meta.labels,
    contentType: meta.contentType,
    finished: true,
  });
}

/**
 * The writes of one transaction. Records are checked one by one (each gets its own outcome, a
 * failed one changes nothing) while their block counters, chunk rows and entry stats accumulate
 * in memory; `finish()` writes each touched chunk, block and entry once. So a batch of 80 records
 * costs a handful of billed rows, not a few per record.
 */
export class RecordWriter {
  /** New records per entry, not yet in the chunks. */
  private readonly staged = new Map<number, { records: PackedRecord[]; timestamps: Set<number>; delta: EntryDelta }>();
  /** Blocks whose counters changed in memory (saved by finish), and the open block of each entry. */
  private readonly dirtyBlocks = new Map<number, BlockRow>();
  private readonly openBlocks = new Map<number, BlockRow>();
  /** Accounted bytes of the records not yet applied, counted against the quota. */
  private unapplied = { all: 0, attachments: 0 };
  /**
   * Read once per batch instead of once per record: entries by name with their latest timestamp (a
   * record after it cannot be a duplicate: the in-order case skips the lookup) and whether uploads
   * are pending in them, and the bucket's usage. Dropped by finish(), which changes all of them.
   */
  private readonly entries = new Map<string, WriteEntry | undefined>();
  private used: { all?: number; stored?: number; attachments?: number } = {};

  constructor(
    private readonly ctx: OpsContext,
    private readonly effects: OpsEffects,
  ) {}

  /** Writes a small record whose bytes are staged in SQLite. Durable when the transaction commits. */
  writeStaged(meta: RecordMeta, payload: ArrayBuffer): ItemOutcome {
    const admitted = this.admit(meta, "write");
    if (!admitted.ok) return admitted;
    const entry = this.ensureEntry(meta.entry);
    this.replaceAttachment(entry, meta);
    this.add(entry, meta, { kind: "staged", bytes: new Uint8Array(payload) });
    return { ok: true };
  }

  /** Reserves `ts` and `size` quota bytes for a streamed upload (see reserveUpload). */
  reserve(meta: RecordMeta): ({ ok: true } & UploadTicket) | { ok: false; error: ErrorInfo } {
    const admitted = this.admit(meta, "reserve");
    if (!admitted.ok) return admitted;
    const entry = this.ensureEntry(meta.entry);
    const attempt = crypto.randomUUID();
    const objectKey = recordObjectKey(this.ctx.bucket.generation, entry.id, meta.ts, attempt);
    const leaseMs = uploadLeaseMs(meta.size);
    const expiresAt = this.ctx.nowMs + leaseMs;
    this.ctx.index.insertPending({
      entry_id: entry.id,
      ts: meta.ts,
      size: meta.size,
      content_type: meta.contentType,
      labels: JSON.stringify(meta.labels),
      object_key: objectKey,
      lease_expires_at_ms: expiresAt,
    });
    this.ctx.index.collectGarbage(objectKey, expiresAt);
    entry.hasPending = true;
    this.used = {};
    return { ok: true, objectKey, leaseMs };
  }

  /** Makes a streamed record visible once its object is durable in R2. */
  commit(entryName: string, ts: number, objectKey: string): ItemOutcome {
    // Found by its object key: the entry may have been renamed while the bytes were uploading.
    const row = this.ctx.index.pendingByKey(objectKey);
    const entry = row ? this.ctx.index.entryById(row.entry_id) : undefined;
    if (!row || !entry) {
      // Released while the bytes were uploading: the entry or the bucket was removed (maybe
      // re-created) or the bucket renamed. The object is garbage and may be deleted already.
      return fail(
        409,
        `Upload of record ${ts} to ${this.ctx.bucket.name}/${entryName} was cancelled: its entry or bucket was removed or renamed meanwhile`,
      );
    }
    if (row.lease_expires_at_ms <= this.ctx.nowMs) {
      return fail(409, `Upload of record ${ts} to ${this.ctx.bucket.name}/${entryName} expired before it completed`);
    }
    const meta: RecordMeta = {
      entry: entry.name,
      ts: row.ts,
      size: row.size,
      contentType: row.content_type,
      labels: JSON.parse(row.labels),
    };
    const quota = this.enforceQuota(meta, "commit");
    if (!quota.ok) return quota;
    this.ctx.index.deletePending(row.entry_id, row.ts);
    this.ctx.index.forgetGarbage(objectKey);
    this.replaceAttachment(entry, meta);
    this.add(entry, meta, { kind: "object", key: objectKey });
    return { ok: true };
  }

  /** Writes everything accumulated: chunk rows, block counters, entry stats. */
  finish(): void {
    for (const [entryId, pending] of this.staged) {
      pending.records.sort((a, b) => a.descriptor.ts - b.descriptor.ts);
      this.ctx.index.insertRecords(entryId, pending.records);
      this.ctx.index.addToEntry(entryId, pending.delta);
    }
    for (const block of this.dirtyBlocks.values()) this.ctx.index.saveBlockCounters(block);
    this.staged.clear();
    this.dirtyBlocks.clear();
    this.openBlocks.clear();
    this.unapplied = { all: 0, attachments: 0 };
    this.entries.clear();
    this.used = {};
  }

  private entry(name: string): WriteEntry | undefined {
    if (!this.entries.has(name)) this.entries.set(name, this.ctx.index.entryForWrite(name));
    return this.entries.get(name);
  }

  private ensureEntry(name: string): WriteEntry {
    const known = this.entry(name);
    if (known) return known;
    const created: WriteEntry = { ...this.ctx.index.ensureEntry(name), latestTs: null, hasPending: false };
    this.entries.clear(); // parents may have been created too
    this.entries.set(name, created);
    return created;
  }

  /** True when a ready record of the entry has this timestamp (chunks only; this batch is checked apart). */
  private inChunks(entry: WriteEntry, ts: number): boolean {
    if (entry.latestTs === null || ts > entry.latestTs) return false;
    return this.ctx.index.hasReady(entry.id, ts);
  }

  /**
   * Checks that a write may start: no ready record at `ts` (409) nor a live pending one (425; an
   * expired pending one is cleared), and the quota allows `size` more bytes (FIFO evicts oldest blocks here).
   */
  private admit(meta: RecordMeta, phase: WritePhase): ItemOutcome {
    const metaCheck = checkMetaWrite(meta);
    if (!metaCheck.ok) return metaCheck;
    const entry = this.entry(meta.entry);
    if (entry) {
      if (this.staged.get(entry.id)?.timestamps.has(meta.ts)) return recordExists(meta.ts);
      if (this.inChunks(entry, meta.ts)) return recordExists(meta.ts);
      const pending = entry.hasPending ? this.ctx.index.pending(entry.id, meta.ts) : undefined;
      if (pending) {
        // Not "already exists": the upload may never finish (its uploader died), and a replication
        // sender would count a 409 as delivered. A single write answers 409 for it (writeSingleRecord).
        if (pending.lease_expires_at_ms > this.ctx.nowMs) return stillBeingWritten(this.ctx.bucket.name, meta.entry, meta.ts);
        releasePending(this.ctx, pending);
        this.used = {};
      }
    }
    return this.enforceQuota(meta, phase);
  }

  /**
   * HARD counts everything stored plus uploads in flight, so racing writes cannot overshoot
   * together. FIFO bounds the whole bucket, attachments included, but evicts only plain data; an
   * upload in flight is not counted until it commits, which is when FIFO makes room for it. A
   * write that could not fit even with all plain data evicted is refused before anything goes.
   */
  private enforceQuota(meta: RecordMeta, phase: WritePhase): ItemOutcome {
    const { ctx } = this;
    const settings = bucketSettings(ctx.bucket);
    const incoming = meta.size;
    if (settings.quota_type === "NONE") return { ok: true };
    if (settings.quota_type === "HARD") {
      this.used.all ??= ctx.index.usedBytes();
      // Checked again at commit: the quota may have become HARD, or smaller, while the bytes were
      // uploading. The upload's own reservation is part of the usage by then.
      const others = phase === "commit" ? this.used.all - incoming : this.used.all;
      const decision = decideQuota(settings, ctx.bucket.name, others + this.unapplied.all, incoming);
      return decision.kind === "reject" ? fail(400, decision.message) : { ok: true };
    }
    const decision = decideQuota(settings, ctx.bucket.name, 0, incoming);
    if (decision.kind === "reject") return fail(400, decision.message);
    const keepQuota = () => fail(400, `Failed to keep quota of '${ctx.bucket.name}'`);
    // The descriptor counts too, so size stays within the quota after the write, not only before.
    const accounted = incoming + descriptorBound(meta);
    this.used.attachments ??= ctx.index.attachmentBytes();
    if (this.used.attachments + this.unapplied.attachments + accounted > settings.quota_size) return keepQuota();
    if (phase === "reserve") return { ok: true };
    this.used.stored ??= this.storedBytes();
    if (this.used.stored + this.unapplied.all + accounted <= settings.quota_size) return { ok: true };
    this.finish(); // eviction works on the chunks: put this batch's records there first
    while (this.storedBytes() + accounted > settings.quota_size) {
      const block = ctx.index.oldestEvictableBlock();
      if (!block) return keepQuota();
      ctx.index.evictBlock(block, ctx.nowMs);
      this.effects.usageChanged = true;
    }
    return { ok: true };
  }

  /** Stored size of the bucket, attachments included, without uploads in flight. */
  private storedBytes(): number {
    return this.ctx.index.attachmentBytes() + this.ctx.index.evictableBytes();
  }

  /** Upsert by key: a new attachment replaces older records with the same `key` label. */
  private replaceAttachment(entry: EntryRef, meta: RecordMeta): void {
    if (!isMetaEntry(meta.entry)) return;
    this.finish();
    const key = meta.labels.key ?? "";
    this.ctx.index.removeRecords(
      this.ctx.index.readyWhere(entry.id, (labels) => labels.key === key),
      this.ctx.nowMs,
    );
  }

  /** The open block a record of `size` bytes joins, starting a new one when limits say so. */
  private blockFor(entryId: number, size: number, staged: boolean): BlockRow {
    const limits = bucketSettings(this.ctx.bucket);
    const open = this.openBlocks.get(entryId) ?? this.ctx.index.openBlock(entryId);
    if (open && !needsNewBlock(open, limits, size, staged)) {
      this.openBlocks.set(entryId, open);
      return open;
    }
    if (open) this.close(open);
    const block = this.ctx.index.startBlock(entryId, this.ctx.nowMs);
    this.openBlocks.set(entryId, block);
    return block;
  }

  private close(block: BlockRow): void {
    this.ctx.index.closeBlock(block);
    this.openBlocks.delete(block.entry_id);
    if (block.staged_bytes > 0) this.effects.blocksToSeal.push(block.id);
  }

  private add(
    entry: EntryRef,
    meta: RecordMeta,
    location: { kind: "staged"; bytes: Uint8Array } | { kind: "object"; key: string },
  ): void {
    const staged = location.kind === "staged";
    const block = this.blockFor(entry.id, meta.size, staged);
    const begin = block.content_bytes;
    const metaLen = recordMetaLength({
      ts: meta.ts,
      begin,
      end: begin + meta.size,
      labels: meta.labels,
      contentType: meta.contentType,
      finished: false,
    });
    block.record_count += 1;
    block.content_bytes += meta.size;
    if (staged) block.staged_bytes += meta.size;
    block.min_ts = Math.min(block.min_ts ?? meta.ts, meta.ts);
    block.max_ts = Math.max(block.max_ts ?? meta.ts, meta.ts);
    block.last_write_at_ms = this.ctx.nowMs;
    this.dirtyBlocks.set(block.id, block);

    let pending = this.staged.get(entry.id);
    if (!pending) {
      pending = { records: [], timestamps: new Set(), delta: { size: 0, records: 0, minTs: meta.ts, maxTs: meta.ts } };
      this.staged.set(entry.id, pending);
    }
    pending.records.push({
      descriptor: {
        ts: meta.ts,
        block_id: block.id,
        size: meta.size,
        content_type: meta.contentType,
        labels: meta.labels,
        meta_len: metaLen,
        block_begin: begin,
        loc: staged ? Loc.Staged : Loc.Object,
        key: staged ? null : location.key,
        offset: 0,
      },
      bytes: staged ? location.bytes : null,
    });
    pending.timestamps.add(meta.ts);
    pending.delta.size += meta.size + metaLen;
    pending.delta.records += 1;
    pending.delta.minTs = Math.min(pending.delta.minTs, meta.ts);
    pending.delta.maxTs = Math.max(pending.delta.maxTs, meta.ts);
    const accounted = meta.size + metaLen;
    this.unapplied.all += accounted;
    if (isMetaEntry(meta.entry)) this.unapplied.attachments += accounted;

    if (isBlockFull(block, bucketSettings(this.ctx.bucket))) this.close(block);
    this.ctx.journal?.logged(meta.entry, meta.ts, meta.labels, "write");
    this.effects.usageChanged = true;
    const traffic = this.effects.written.get(meta.entry) ?? { bytes: 0, records: 0 };
    traffic.bytes += meta.size;
    traffic.records += 1;
    this.effects.written.set(meta.entry, traffic);
  }
}

/** Releases a pending reservation (failed, aborted or expired upload); its object becomes garbage. */
export function releasePending(ctx: OpsContext, row: PendingRow): void {
  ctx.index.deletePending(row.entry_id, row.ts);
  // A put that timed out on our side may still land in R2: delete it only after a grace period.
  ctx.index.collectGarbage(row.object_key, ctx.nowMs + SEAL_LEASE_MS);
}

export function abortUpload(ctx: OpsContext, objectKey: string): void {
  const row = ctx.index.pendingByKey(objectKey);
  if (row) releasePending(ctx, row);
  else ctx.index.collectGarbage(objectKey, ctx.nowMs + SEAL_LEASE_MS);
}

/** Pending rows whose lease ran out (the uploader died): release them. Returns how many. */
export function sweepExpiredUploads(ctx: OpsContext, limit: number): number {
  const rows = ctx.index.expiredPending(ctx.nowMs, limit);
  for (const row of rows) releasePending(ctx, row);
  return rows.length;
}

/**
 * Writes small records staged in SQLite, of one or several calls (group commit) in one
 * transaction: one writer checks them in order, so each record gets the outcome it would get after
 * the calls before it; one list of outcomes per call.
 */
export function writeStagedCalls(
  ctx: OpsContext,
  effects: OpsEffects,
  calls: readonly (readonly { meta: RecordMeta; payload: ArrayBuffer }[])[],
): ItemOutcome[][] {
  const writer = new RecordWriter(ctx, effects);
  const results = calls.map((items) => items.map((item) => writer.writeStaged(item.meta, item.payload)));
  writer.finish();
  return results;
}

/** Reserves a streamed record's timestamp and quota (see RecordWriter.reserve). */
export function reserveRecord(
  ctx: OpsContext,
  effects: OpsEffects,
  meta: RecordMeta,
): ({ ok: true } & UploadTicket) | { ok: false; error: ErrorInfo } {
  const writer = new RecordWriter(ctx, effects);
  const reserved = writer.reserve(meta);
  writer.finish();
  return reserved;
}

/** Makes a streamed record visible (see RecordWriter.commit). */
export function commitRecord(ctx: OpsContext, effects: OpsEffects, entry: string, ts: number, objectKey: string): ItemOutcome {
  const writer = new RecordWriter(ctx, effects);
  const committed = writer.commit(entry, ts, objectKey);
  writer.finish();
  return committed;
}
