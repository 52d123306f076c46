/**
 * Record operations of the bucket object, as synchronous functions over its SQLite index: each
 * runs inside one `transactionSync`, so a timestamp and quota are reserved, or a record becomes
 * visible, atomically — before any await on R2. Expected failures are returned, not thrown.
 */
import type { ErrorInfo } from "../errors";
import { fail } from "../errors";
import { isBlockFull, needsNewBlock, SEAL_LEASE_MS, uploadLeaseMs } from "../storage/blocks";
import { decideQuota } from "../storage/quota";
import { recordObjectKey } from "../storage/r2";
import { recordMetaLength } from "../storage/record-meta";
import type { BucketRow, BucketStore } from "./bucket-store";
import { isMetaEntry } from "./bucket-store";
import type { BlockRow, EntryRef, Labels, RecordIndex, RecordRow } from "./record-index";

export interface OpsContext {
  sql: SqlStorage;
  store: BucketStore;
  index: RecordIndex;
  bucket: BucketRow;
  nowMs: number;
}

/** What the edge sends for a record: validated metadata (and the bytes, for staged records). */
export interface RecordMeta {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

export type ItemOutcome = { ok: true } | { ok: false; error: ErrorInfo };

export interface OpsEffects {
  /** Blocks that filled up and should be sealed now. */
  blocksToSeal: number[];
  usageChanged: boolean;
}

const recordExists = (ts: number) => fail(409, `A record with timestamp ${ts} already exists`);

/** ReductStore's attachment rules for `$meta` entries (§4.9). */
function checkMetaWrite(meta: RecordMeta): ItemOutcome {
  if (!isMetaEntry(meta.entry)) return { ok: true };
  if (meta.labels.key === undefined) return fail(422, `System entry '${meta.entry}' records must contain label 'key'`);
  if (meta.labels.remove === "true")
    return fail(422, `System entry '${meta.entry}' records can't be written with label 'remove=true'`);
  return { ok: true };
}

/**
 * Checks that a write may start: no ready or live pending record at `ts` (an expired pending one is
 * cleared), and the quota allows `size` more bytes (FIFO evicts oldest blocks here).
 */
function admit(ctx: OpsContext, meta: RecordMeta, effects: OpsEffects): ItemOutcome {
  const metaCheck = checkMetaWrite(meta);
  if (!metaCheck.ok) return metaCheck;
  const entry = ctx.index.entry(meta.entry);
  if (entry) {
    const existing = ctx.index.record(entry.id, meta.ts);
    if (existing) {
      const expired = existing.state === "pending" && (existing.lease_expires_at_ms ?? 0) <= ctx.nowMs;
      if (!expired) return recordExists(meta.ts);
      releasePending(ctx, existing);
    }
  }
  return enforceQuota(ctx, meta.size, effects);
}

function enforceQuota(ctx: OpsContext, incoming: number, effects: OpsEffects): ItemOutcome {
  const settings = ctx.store.settings(ctx.bucket);
  const decision = decideQuota(settings, ctx.bucket.name, ctx.index.usedBytes(), incoming);
  if (decision.kind === "accept") return { ok: true };
  if (decision.kind === "reject") return fail(400, decision.message);
  while (ctx.index.usedBytes() + incoming > settings.quota_size) {
    const block = ctx.index.oldestEvictableBlock();
    if (!block) return fail(400, `Failed to keep quota of '${ctx.bucket.name}'`);
    for (const row of ctx.index.readyRecordsOfBlock(block.id)) ctx.index.removeRecord(row, ctx.nowMs);
    effects.usageChanged = true;
  }
  return { ok: true };
}

/** Upsert by key: a new attachment replaces older records with the same `key` label. */
function replaceAttachment(ctx: OpsContext, entry: EntryRef, meta: RecordMeta): void {
  if (!isMetaEntry(meta.entry)) return;
  const rows = ctx.sql
    .exec<RecordRow & Record<string, SqlStorageValue>>(
      "SELECT * FROM records WHERE entry_id = ? AND state = 'ready' AND json_extract(labels, '$.key') = ?",
      entry.id,
      meta.labels.key ?? "",
    )
    .toArray();
  for (const row of rows) ctx.index.removeRecord(row, ctx.nowMs);
}

/** The open block a record of `size` bytes joins, starting a new one when limits say so. */
function blockFor(ctx: OpsContext, entryId: number, size: number, staged: boolean, effects: OpsEffects): BlockRow {
  const limits = ctx.store.settings(ctx.bucket);
  const open = ctx.index.openBlock(entryId);
  if (open && !needsNewBlock(open, limits, size, staged)) return open;
  if (open) {
    ctx.index.closeBlock(open);
    if (open.staged_bytes > 0) effects.blocksToSeal.push(open.id);
  }
  return ctx.index.startBlock(entryId, ctx.nowMs);
}

function insertIntoBlock(
  ctx: OpsContext,
  entry: EntryRef,
  meta: RecordMeta,
  location: { kind: "staged"; payload: ArrayBuffer } | { kind: "object"; key: string },
  effects: OpsEffects,
): void {
  const staged = location.kind === "staged";
  const block = blockFor(ctx, entry.id, meta.size, staged, effects);
  const begin = block.content_bytes;
  const metaLen = recordMetaLength({
    ts: meta.ts,
    begin,
    end: begin + meta.size,
    labels: meta.labels,
    contentType: meta.contentType,
    finished: false,
  });
  const after = ctx.index.insertReady(
    block,
    {
      entry_id: entry.id,
      ts: meta.ts,
      size: meta.size,
      content_type: meta.contentType,
      labels: JSON.stringify(meta.labels),
      meta_len: metaLen,
      block_begin: begin,
      location: staged ? "staged" : "object",
      object_key: staged ? null : location.key,
      object_offset: staged ? null : 0,
    },
    staged ? location.payload : null,
    ctx.nowMs,
  );
  if (isBlockFull(after, ctx.store.settings(ctx.bucket))) {
    ctx.index.closeBlock(after);
    if (after.staged_bytes > 0) effects.blocksToSeal.push(after.id);
  }
  effects.usageChanged = true;
}

/** Writes a small record whose bytes are staged in SQLite. Durable when the transaction commits. */
export function writeStaged(ctx: OpsContext, meta: RecordMeta, payload: ArrayBuffer, effects: OpsEffects): ItemOutcome {
  const admitted = admit(ctx, meta, effects);
  if (!admitted.ok) return admitted;
  const entry = ctx.index.ensureEntry(meta.entry);
  replaceAttachment(ctx, entry, meta);
  insertIntoBlock(ctx, entry, meta, { kind: "staged", payload }, effects);
  return { ok: true };
}

export interface UploadTicket {
  objectKey: string;
  leaseMs: number;
}

/**
 * Reserves `ts` and `size` quota bytes for a streamed upload: a pending row (reads get 425) and an
 * intent in r2_garbage, so the object is deleted if the upload never commits.
 */
export function reserveUpload(
  ctx: OpsContext,
  meta: RecordMeta,
  effects: OpsEffects,
): ({ ok: true } & UploadTicket) | { ok: false; error: ErrorInfo } {
  const admitted = admit(ctx, meta, effects);
  if (!admitted.ok) return admitted;
  const entry = ctx.index.ensureEntry(meta.entry);
  const attempt = crypto.randomUUID();
  const objectKey = recordObjectKey(ctx.bucket.generation, entry.id, meta.ts, attempt);
  const leaseMs = uploadLeaseMs(meta.size);
  const expiresAt = ctx.nowMs + leaseMs;
  ctx.sql.exec(
    `INSERT INTO records (entry_id, ts, block_id, state, size, content_type, labels, meta_len, location, object_key, object_offset, lease_expires_at_ms)
     VALUES (?, ?, 0, 'pending', ?, ?, ?, 0, 'object', ?, 0, ?)`,
    entry.id,
    meta.ts,
    meta.size,
    meta.contentType,
    JSON.stringify(meta.labels),
    objectKey,
    expiresAt,
  );
  ctx.index.collectGarbage(objectKey, expiresAt);
  return { ok: true, objectKey, leaseMs };
}

/** Makes a streamed record visible once its object is durable in R2. */
export function commitUpload(
  ctx: OpsContext,
  entryName: string,
  ts: number,
  objectKey: string,
  effects: OpsEffects,
): ItemOutcome {
  // Found by its object key: the entry may have been renamed while the bytes were uploading.
  const row = pendingByKey(ctx, objectKey);
  const entry = row
    ? ctx.sql.exec<{ id: number; name: string }>("SELECT id, name FROM entries WHERE id = ?", row.entry_id).toArray()[0]
    : undefined;
  if (!row || !entry || (row.lease_expires_at_ms ?? 0) <= ctx.nowMs) {
    // Released (entry removed, lease expired): the object is garbage and may be deleted already.
    return fail(500, `Upload of record ${ts} to ${ctx.bucket.name}/${entryName} expired before it completed`);
  }
  ctx.sql.exec("DELETE FROM records WHERE entry_id = ? AND ts = ?", row.entry_id, row.ts);
  ctx.index.forgetGarbage(objectKey);
  const meta: RecordMeta = {
    entry: entry.name,
    ts: row.ts,
    size: row.size,
    contentType: row.content_type,
    labels: JSON.parse(row.labels),
  };
  replaceAttachment(ctx, entry, meta);
  insertIntoBlock(ctx, entry, meta, { kind: "object", key: objectKey }, effects);
  return { ok: true };
}

/** Releases a pending reservation (failed, aborted or expired upload); its object becomes garbage. */
export function releasePending(ctx: OpsContext, row: RecordRow): void {
  ctx.sql.exec("DELETE FROM records WHERE entry_id = ? AND ts = ? AND state = 'pending'", row.entry_id, row.ts);
  // A put that timed out on our side may still land in R2: delete it only after a grace period.
  if (row.object_key) ctx.index.collectGarbage(row.object_key, ctx.nowMs + SEAL_LEASE_MS);
}

export function abortUpload(ctx: OpsContext, objectKey: string): void {
  const row = pendingByKey(ctx, objectKey);
  if (row) releasePending(ctx, row);
  else ctx.index.collectGarbage(objectKey, ctx.nowMs + SEAL_LEASE_MS);
}

function pendingByKey(ctx: OpsContext, objectKey: string): RecordRow | undefined {
  return ctx.sql
    .exec<RecordRow & Record<string, SqlStorageValue>>(
      "SELECT * FROM records WHERE state = 'pending' AND object_key = ?",
      objectKey,
    )
    .toArray()[0];
}

/** Pending rows whose lease ran out (the uploader died): release them. Returns how many. */
export function sweepExpiredUploads(ctx: OpsContext, limit: number): number {
  const rows = ctx.sql
    .exec<RecordRow & Record<string, SqlStorageValue>>(
      "SELECT * FROM records WHERE state = 'pending' AND lease_expires_at_ms <= ? LIMIT ?",
      ctx.nowMs,
      limit,
    )
    .toArray();
  for (const row of rows) releasePending(ctx, row);
  return rows.length;
}

export function nextLeaseExpiry(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>("SELECT min(lease_expires_at_ms) AS at FROM records WHERE state = 'pending'").one().at;
}

export const recordNotFound = (bucket: string, entry: string, ts: number) =>
  fail(404, `Record ${ts} not found in entry ${bucket}/${entry}`);
export const entryNotFound = (bucket: string, entry: string) => fail(404, `Entry '${entry}' not found in bucket '${bucket}'`);
export const stillBeingWritten = (bucket: string, entry: string, ts: number) =>
  fail(425, `Record with timestamp ${ts} in ${bucket}/${entry} is still being written`);

/** Applies label changes (empty value = delete) to a ready record; the descriptor grows by state. */
export function updateLabels(ctx: OpsContext, entryName: string, ts: number, changes: Labels): ItemOutcome {
  const entry = ctx.index.entry(entryName);
  if (!entry) return entryNotFound(ctx.bucket.name, entryName);
  const row = ctx.index.record(entry.id, ts);
  if (!row) return recordNotFound(ctx.bucket.name, entryName, ts);
  if (row.state === "pending") return stillBeingWritten(ctx.bucket.name, entryName, ts);
  const labels: Labels = JSON.parse(row.labels);
  for (const [name, value] of Object.entries(changes)) {
    if (value === "") delete labels[name];
    else labels[name] = value;
  }
  const begin = row.block_begin;
  const metaLen = recordMetaLength({
    ts,
    begin,
    end: begin + row.size,
    labels,
    contentType: row.content_type,
    finished: true,
  });
  ctx.index.updateLabels(entry.id, ts, JSON.stringify(labels), metaLen, row.meta_len);
  return { ok: true };
}

export function removeRecord(ctx: OpsContext, entryName: string, ts: number): ItemOutcome {
  if (isMetaEntry(entryName)) {
    return fail(422, `Can't delete records from system entry '${entryName}'; use label update with remove=true`);
  }
  const entry = ctx.index.entry(entryName);
  if (!entry) return entryNotFound(ctx.bucket.name, entryName);
  const row = ctx.index.record(entry.id, ts);
  if (!row || row.state === "pending") return recordNotFound(ctx.bucket.name, entryName, ts);
  ctx.index.removeRecord(row, ctx.nowMs);
  return { ok: true };
}
