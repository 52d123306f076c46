/**
 * One SQLite-backed Durable Object per bucket, addressed by bucket name (`getByName`). RPC methods
 * only: it never sees a `Request`, takes plain validated values from the edge and returns tagged
 * results (`{ok: true, …} | {ok: false, error}`) for expected outcomes. It owns the bucket's
 * settings, entries, block and record index and staged small records; `alarm()` does all
 * maintenance (registry/usage flush to D1, R2 purges and garbage deletion).
 */

import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../api/context";
import type { BucketSettings } from "../config";
import { type ErrorInfo, fail, type Result } from "../errors";
import { SEAL_IDLE_MS, SEAL_LEASE_MS } from "../storage/blocks";
import { blockObjectKey, generationPrefix, purgePrefixPage, R2_DELETE_BATCH, R2_TIMEOUT_MS, withTimeout } from "../storage/r2";
import { recordsBucket } from "../storage/r2-binding";
import { type BucketInfo, type BucketRow, BucketStore, type EntryInfo, isMetaEntry, renameKindError } from "./bucket-store";
import { type Batch, type BatchLimits, type CursorCommit, QueryEngine, type QueryScope, type QuerySpec } from "./query-engine";
import { type Labels, RecordIndex, type RecordRow } from "./record-index";
import {
  abortUpload,
  entryNotFound,
  type ItemOutcome,
  type LabelChanges,
  type OpsContext,
  type OpsEffects,
  planLabelUpdate,
  planRemoval,
  type RecordMeta,
  RecordWriter,
  recordNotFound,
  removeRecord,
  stillBeingWritten,
  sweepExpiredUploads,
  type UploadTicket,
  updateLabels,
} from "./record-ops";
import { deleteRegistryRow, upsertRegistryRow } from "./registry";
import { BUCKET_TABLES, type ExportPage, exportTablePage, importRows, RENAME_STALE_MS } from "./rename";
import { migrate } from "./schema";

/** Usage reaches D1 at most this long after a write (the documented staleness bound is 1 s). */
export const STATS_FLUSH_DELAY_MS = 500;
/** Usage flushes to D1 a bucket may make at once, and per second under steady ingest (the rest coalesce). */
export const USAGE_FLUSH_BURST = 8;
export const USAGE_FLUSHES_PER_S = 2;
/** One alarm run stops starting new work after this long and reschedules itself. */
export const ALARM_BUDGET_MS = 10_000;
/** Seals started by writes that may run at once in one object (the alarm does the rest). */
export const MAX_CONCURRENT_SEALS = 2;
/** While a rename freezes the bucket, the alarm looks again this often. */
export const RENAME_FROZEN_RECHECK_MS = 5_000;
/** Retry delay after an alarm task failed (D1 or R2 unavailable). */
export const ALARM_RETRY_MS = 5_000;

export interface BucketDetails {
  info: BucketInfo;
  settings: BucketSettings;
  entries: EntryInfo[];
}

type Ok = Result<Record<never, never>>;
const OK = { ok: true } as const;

/** A record as reads return it. */
export interface RecordView {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

/** Where a read finds the bytes: inline (staged in SQLite), a range of an R2 object, or none (HEAD/empty). */
export type BodyLocation =
  | { kind: "none" }
  | { kind: "inline"; bytes: ArrayBuffer }
  | { kind: "r2"; key: string; offset: number };

export interface StagedItem {
  meta: RecordMeta;
  payload: ArrayBuffer;
}

/** Thrown inside `transactionSync` to roll back an operation that returned a failure. */
class Rollback {
  constructor(readonly outcome: ItemOutcome) {}
}

const bucketNotFound = (name: string) => fail(404, `Bucket '${name}' is not found`);

function newEffects(): OpsEffects {
  return { blocksToSeal: [], usageChanged: false };
}

export class BucketObject extends DurableObject<Bindings> {
  protected readonly store: BucketStore;
  protected readonly index: RecordIndex;
  protected readonly queries: QueryEngine;
  /** Buckets whose create awaits D1 (in memory: an object restart also ends the create call). */
  private readonly registering = new Set<string>();
  /** Seals running in this instance, by block id: a block is never sealed twice at once. */
  private readonly sealing = new Map<number, Promise<void>>();
  /** D1 registry writes of this object, serialised so an older sync never lands after a newer one. */
  private registryChain: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new BucketStore(ctx.storage.sql);
    this.index = new RecordIndex(ctx.storage.sql);
    this.queries = new QueryEngine(ctx.storage.sql, this.index);
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
    });
  }

  // ---- bucket lifecycle -------------------------------------------------------------------

  /** POST /b/:bucket. The name becomes visible in /list before this returns. */
  async createBucket(name: string, settings: BucketSettings): Promise<Ok> {
    const existing = this.abandonStalledRename(this.store.bucket());
    if (existing?.renaming_from) return fail(409, `Bucket '${name}' is being renamed`);
    if (existing) return fail(409, `Bucket '${name}' already exists`);
    const generation = crypto.randomUUID();
    this.store.insertBucket(name, generation, settings, Date.now());
    this.flushTokens = USAGE_FLUSH_BURST; // a new bucket starts with a full burst
    // Until D1 has it, the bucket does not exist for other requests (the create may be undone).
    this.registering.add(name);
    try {
      await this.syncRegistry();
    } catch (error) {
      // Undo, so the create is all or nothing for the client; the alarm removes a registry row
      // that D1 may have written before failing (only if it is still this generation's).
      console.error(`registering bucket ${name} in D1 failed; the create is undone:`, error);
      const now = Date.now();
      this.ctx.storage.transactionSync(() => {
        this.store.clearData();
        this.store.queuePurge(name, generation, now);
      });
      await this.scheduleAlarm(now);
      return fail(503, `Bucket '${name}' could not be registered, please try again: ${String(error)}`);
    } finally {
      this.registering.delete(name);
    }
    return OK;
  }

  /** GET /b/:bucket */
  async getBucket(name: string): Promise<Result<BucketDetails>> {
    const row = this.liveBucket(name);
    if ("error" in row) return row;
    return {
      ok: true,
      info: this.store.bucketInfo(row),
      settings: this.store.settings(row),
      entries: this.store.entryInfos(),
    };
  }

  /** HEAD /b/:bucket */
  async headBucket(name: string): Promise<Ok> {
    const row = this.liveBucket(name);
    return "error" in row ? row : OK;
  }

  /** PUT /b/:bucket: missing fields keep their current value; new block limits apply to new blocks. */
  async updateBucketSettings(name: string, patch: Partial<BucketSettings>): Promise<Ok> {
    const row = this.liveBucket(name);
    if ("error" in row) return row;
    if (row.is_provisioned) return fail(409, `Can't change settings of provisioned bucket '${name}'`);
    this.store.updateSettings({ ...this.store.settings(row), ...patch });
    return OK;
  }

  /**
   * DELETE /b/:bucket. The index goes at once (the name is free when this returns); the R2 objects
   * of this generation are purged by the alarm.
   */
  async deleteBucket(name: string): Promise<Ok> {
    const row = this.liveBucket(name);
    if ("error" in row) return row;
    if (row.is_provisioned) return fail(409, `Can't remove provisioned bucket '${name}'`);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.store.clearData();
      this.store.queuePurge(name, row.generation, now);
    });
    await this.scheduleAlarm(now);
    // Visible in /list before we answer; if D1 fails here the alarm retries from r2_purges.
    await this.serialiseRegistryWrite(() => deleteRegistryRow(this.env.DB, name, row.generation));
    return OK;
  }

  // ---- records ------------------------------------------------------------------------------

  /**
   * Writes small records whose bytes travel with the call, staged in SQLite in one transaction.
   * Each record is checked on its own, so one record's failure (duplicate, quota) leaves the
   * others written. The caller's acknowledgement follows the commit (the output gate holds it
   * until durable).
   */
  async writeRecords(bucket: string, items: StagedItem[]): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const effects = newEffects();
    const outcomes = this.ctx.storage.transactionSync(() => {
      const writer = new RecordWriter(this.opsContext(row), effects);
      const results = items.map((item) => writer.writeStaged(item.meta, item.payload));
      writer.finish();
      return results;
    });
    await this.afterWrite(effects);
    return { ok: true, outcomes };
  }

  /** Reserves timestamp and quota for a record the edge streams straight to R2. */
  async reserveUpload(bucket: string, meta: RecordMeta): Promise<Result<UploadTicket>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const effects = newEffects();
    let ticket: UploadTicket | undefined;
    const outcome = this.transact(row, (ops) => {
      const writer = new RecordWriter(ops, effects);
      const reserved = writer.reserve(meta);
      writer.finish();
      if (reserved.ok) ticket = { objectKey: reserved.objectKey, leaseMs: reserved.leaseMs };
      return reserved.ok ? { ok: true } : reserved;
    });
    await this.afterWrite(effects);
    await this.scheduleAlarm(Date.now() + (ticket?.leaseMs ?? 0));
    return outcome.ok && ticket ? { ok: true, ...ticket } : (outcome as { ok: false; error: ErrorInfo });
  }

  /** The streamed object is durable in R2: make the record visible. */
  async commitUpload(bucket: string, entry: string, ts: number, objectKey: string): Promise<Ok> {
    const row = this.liveBucket(bucket);
    if ("error" in row) {
      this.ctx.storage.transactionSync(() => this.index.collectGarbage(objectKey, Date.now()));
      await this.scheduleAlarm(Date.now());
      return row;
    }
    const effects = newEffects();
    const outcome = this.transact(row, (ops) => {
      const writer = new RecordWriter(ops, effects);
      const committed = writer.commit(entry, ts, objectKey);
      writer.finish();
      return committed;
    });
    await this.afterWrite(effects);
    return outcome.ok ? OK : outcome;
  }

  /** The upload failed or was cut short: release the timestamp; the object is deleted by the alarm. */
  async abortUpload(_bucket: string, _entry: string, _ts: number, objectKey: string): Promise<void> {
    const row = this.store.bucket();
    const nowMs = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (row) abortUpload(this.opsContext(row, nowMs), objectKey);
      else this.index.collectGarbage(objectKey, nowMs);
    });
    await this.scheduleAlarm(nowMs);
  }

  /** GET/HEAD one record: by timestamp, or the latest when `ts` is null. */
  async readRecord(
    bucket: string,
    entryName: string,
    ts: number | null,
    withBody: boolean,
  ): Promise<Result<{ record: RecordView; body: BodyLocation }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const entry = this.index.entry(entryName);
    if (!entry) return entryNotFound(bucket, entryName);
    const record = ts === null ? this.index.latestReady(entry.id) : this.index.record(entry.id, ts);
    if (!record) {
      return ts === null ? fail(404, `No records in entry ${bucket}/${entryName}`) : recordNotFound(bucket, entryName, ts);
    }
    if (record.state === "pending") return stillBeingWritten(bucket, entryName, record.ts);
    const view: RecordView = {
      entry: entryName,
      ts: record.ts,
      size: record.size,
      contentType: record.content_type,
      labels: record.labels,
    };
    let body: BodyLocation = { kind: "none" };
    if (withBody && record.size > 0) {
      if (record.location === "staged") {
        const bytes = this.index.stagedPayload(record);
        if (!bytes) throw new Error(`staged payload of ${bucket}/${entryName}/${record.ts} is missing`);
        body = { kind: "inline", bytes };
      } else {
        body = { kind: "r2", key: record.object_key ?? "", offset: record.object_offset ?? 0 };
      }
    }
    return { ok: true, record: view, body };
  }

  /** PATCH one record's labels (empty value deletes a label). */
  async updateRecordLabels(bucket: string, entry: string, ts: number, changes: LabelChanges): Promise<Ok> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => updateLabels(ops, entry, ts, changes));
    if (outcome.ok) await this.usageChanged();
    return outcome.ok ? OK : outcome;
  }

  /** Batch label updates (v1 PATCH …/batch, v2 /io update): one outcome per item, in order. */
  async updateLabelsMany(
    bucket: string,
    items: { entry: string; ts: number; changes: LabelChanges }[],
  ): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    // One transaction; each touched chunk is rewritten once. An item sees earlier items' labels.
    const outcomes = this.ctx.storage.transactionSync(() => {
      const ops = this.opsContext(row);
      const planned = new Map<string, { entryId: number; update: { ts: number; labels: Labels; meta_len: number } }>();
      const plannedLabels = new Map<string, Map<number, Labels>>();
      const results = items.map((item): ItemOutcome => {
        const key = `${item.entry}\u0000${item.ts}`;
        const inEntry = plannedLabels.get(item.entry) ?? new Map<number, Labels>();
        const plan = planLabelUpdate(ops, item.entry, item.ts, item.changes, inEntry);
        if (!plan.ok) return plan;
        planned.set(key, { entryId: plan.entry.id, update: plan.update });
        inEntry.set(item.ts, plan.update.labels);
        plannedLabels.set(item.entry, inEntry);
        return { ok: true };
      });
      const byEntry = new Map<number, { ts: number; labels: Labels; meta_len: number }[]>();
      for (const { entryId, update } of planned.values()) {
        const list = byEntry.get(entryId);
        if (list) list.push(update);
        else byEntry.set(entryId, [update]);
      }
      for (const [entryId, updates] of byEntry) ops.index.updateLabels(entryId, updates);
      return results;
    });
    if (outcomes.some((outcome) => outcome.ok)) await this.usageChanged();
    return { ok: true, outcomes };
  }

  /** Batch removals (v1 DELETE …/batch, v2 /io remove): one outcome per item, in order. */
  async removeMany(bucket: string, items: { entry: string; ts: number }[]): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    // One transaction; each touched chunk, block and entry is rewritten once.
    const outcomes = this.ctx.storage.transactionSync(() => {
      const ops = this.opsContext(row);
      const removed = new Map<string, RecordRow>();
      const results = items.map((item): ItemOutcome => {
        const key = `${item.entry}\u0000${item.ts}`;
        if (removed.has(key)) return recordNotFound(bucket, item.entry, item.ts);
        const plan = planRemoval(ops, item.entry, item.ts);
        if (!plan.ok) return plan;
        removed.set(key, plan.row);
        return { ok: true };
      });
      ops.index.removeRecords([...removed.values()], ops.nowMs);
      return results;
    });
    if (outcomes.some((outcome) => outcome.ok)) await this.afterRemoval();
    return { ok: true, outcomes };
  }

  /** True when the entry exists (batch endpoints answer 404 for a missing entry as a whole). */
  async hasEntry(bucket: string, entry: string): Promise<Result<{ exists: boolean }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    return { ok: true, exists: this.index.entry(entry) !== undefined };
  }

  /** DELETE one record. */
  async removeRecord(bucket: string, entry: string, ts: number): Promise<Ok> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => removeRecord(ops, entry, ts));
    if (outcome.ok) await this.afterRemoval();
    return outcome.ok ? OK : outcome;
  }

  /** DELETE an entry with all its descendants (`a` removes `a/b`, `a/$meta`, …). */
  async removeEntry(bucket: string, entryName: string): Promise<Ok> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    if (isMetaEntry(entryName)) return fail(409, `System entry '${entryName}' can be removed only with its parent entry`);
    const subtree = this.index.subtree(entryName);
    if (subtree.length === 0) return entryNotFound(bucket, entryName);
    this.ctx.storage.transactionSync(() => this.index.dropEntries(subtree, Date.now()));
    await this.afterRemoval();
    return OK;
  }

  /** PUT an entry's new name; descendants move along and missing parents of the target appear. */
  async renameEntry(bucket: string, entryName: string, newName: string): Promise<Ok> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const kindError = renameKindError(entryName, newName);
    if (kindError) return { ok: false, error: kindError };
    const subtree = this.index.subtree(entryName);
    if (subtree.length === 0) return entryNotFound(bucket, entryName);
    const inside = newName === entryName || newName.startsWith(`${entryName}/`);
    if (inside || this.index.entry(newName)) return fail(409, `Entry '${newName}' already exists in bucket '${bucket}'`);
    this.ctx.storage.transactionSync(() => {
      for (const entry of subtree) {
        const renamed = newName + entry.name.slice(entryName.length);
        this.ctx.storage.sql.exec("UPDATE entries SET name = ? WHERE id = ?", renamed, entry.id);
      }
      this.index.ensureEntry(newName);
    });
    await this.usageChanged();
    return OK;
  }

  // ---- queries --------------------------------------------------------------------------------

  /** POST …/q (QUERY), GET …/q (legacy), POST /io/:bucket/q: returns the new query id. */
  async createQuery(bucket: string, spec: QuerySpec): Promise<Result<{ id: number }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const single = spec.kind === "entry" ? spec.entries[0] : undefined;
    if (single !== undefined && !this.index.entry(single)) return entryNotFound(bucket, single);
    const now = Date.now();
    const created = this.ctx.storage.transactionSync(() => this.queries.create(spec, now));
    if (created.ok) await this.scheduleAlarm(now + spec.ttlSeconds * 1000);
    return created;
  }

  /**
   * The next batch of a query (a single-record read is a batch of one). A batch with records
   * comes with the cursor position to `commitQuery` once the edge holds its bytes.
   */
  async readQuery(
    bucket: string,
    id: number,
    scope: QueryScope,
    limits: BatchLimits,
    withBody: boolean,
  ): Promise<Result<{ batch: Batch; commit: CursorCommit | null }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    return this.ctx.storage.transactionSync(() =>
      this.queries.next(id, scope, limits, withBody, Date.now(), (record) => {
        const bytes = this.index.stagedPayload(record);
        if (!bytes) throw new Error(`staged payload of ${bucket} entry ${record.entry_id} at ${record.ts} is missing`);
        return bytes;
      }),
    );
  }

  /** Advances a query past a batch the edge is sending; `committed` false: another read moved it first. */
  async commitQuery(bucket: string, commit: CursorCommit): Promise<Result<{ committed: boolean }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    return { ok: true, committed: this.queries.commit(commit) };
  }

  /** REMOVE queries: deletes matching records in one transaction; a strict-mode error removes nothing. */
  async removeByQuery(bucket: string, spec: QuerySpec): Promise<Result<{ removed: number }>> {
    const row = this.liveBucket(bucket);
    if ("error" in row) return row;
    const single = spec.kind === "entry" ? spec.entries[0] : undefined;
    if (single !== undefined && isMetaEntry(single)) {
      return fail(422, `Can't delete records from system entry '${single}'; use label update with remove=true`);
    }
    let removed = 0;
    const outcome = this.transact(row, (ops) => {
      // The reference creates a missing entry here; we do not (it would be an empty entry with an
      // unvalidated name) and report 0 removed records.
      const result = this.queries.remove(spec, (rows) => ops.index.removeRecords(rows, ops.nowMs));
      if (!result.ok) return result;
      removed = result.removed;
      return { ok: true };
    });
    if (!outcome.ok) return outcome;
    await this.afterRemoval();
    return { ok: true, removed };
  }

  // ---- record plumbing ----------------------------------------------------------------------

  protected opsContext(bucket: BucketRow, nowMs = Date.now()): OpsContext {
    return { sql: this.ctx.storage.sql, store: this.store, index: this.index, bucket, nowMs };
  }

  /** Runs one operation in a transaction, rolling it back when it returns a failure. */
  protected transact(bucket: BucketRow, operation: (ops: OpsContext) => ItemOutcome): ItemOutcome {
    try {
      return this.ctx.storage.transactionSync(() => {
        const outcome = operation(this.opsContext(bucket));
        if (!outcome.ok) throw new Rollback(outcome);
        return outcome;
      });
    } catch (error) {
      if (error instanceof Rollback) return error.outcome;
      throw error;
    }
  }

  private async afterWrite(effects: OpsEffects): Promise<void> {
    for (const blockId of effects.blocksToSeal) this.kickSeal(blockId);
    // A write that changed anything schedules the alarm within STATS_FLUSH_DELAY_MS, and the alarm
    // plans the idle seals (nextMaintenanceAt): no index query per write for them here.
    if (effects.usageChanged) await this.usageChanged();
    else {
      const idleSealAt = this.index.nextIdleSealAt(SEAL_IDLE_MS);
      if (idleSealAt !== null) await this.scheduleAlarm(idleSealAt);
    }
  }

  private async afterRemoval(): Promise<void> {
    await this.usageChanged();
    const garbageAt = this.nextGarbageAt();
    if (garbageAt !== null) await this.scheduleAlarm(garbageAt);
  }

  /**
   * Starts sealing a block off the request path. At most MAX_CONCURRENT_SEALS run at once (each
   * holds up to 8 MiB twice); the rest, and whatever fails, is sealed by the alarm.
   */
  private kickSeal(blockId: number): void {
    if (this.sealing.has(blockId) || this.sealing.size >= MAX_CONCURRENT_SEALS) return;
    void this.sealOnce(blockId).catch((error) => console.error(`sealing block ${blockId} failed; the alarm retries:`, error));
  }

  /** Seals a block, or joins the seal of it already running. */
  private sealOnce(blockId: number): Promise<void> {
    const running = this.sealing.get(blockId);
    if (running) return running;
    const sealing = this.sealBlock(blockId).finally(() => this.sealing.delete(blockId));
    this.sealing.set(blockId, sealing);
    return sealing;
  }

  /**
   * Writes a block's staged records to one R2 object, then points the records at it. The key is
   * unique per attempt and registered as garbage first (intent), so a crash mid-put leaves nothing
   * behind after the lease; the commit removes the intent.
   */
  protected async sealBlock(blockId: number): Promise<void> {
    const bucket = this.store.bucket();
    let block = this.index.block(blockId);
    if (!bucket || !block || block.state === "sealed") return;
    if (block.state === "open") {
      const open = block;
      this.ctx.storage.transactionSync(() => this.index.closeBlock(open));
    }
    const staged = this.index.stagedRecordsOf(block);
    if (staged.length === 0) {
      this.ctx.storage.sql.exec("UPDATE blocks SET state = 'sealed', staged_bytes = 0 WHERE id = ?", blockId);
      return;
    }
    const total = staged.reduce((sum, record) => sum + record.size, 0);
    const bytes = new Uint8Array(total);
    const offsets = new Map<number, number>();
    let offset = 0;
    for (const record of staged) {
      offsets.set(record.ts, offset);
      bytes.set(record.bytes, offset);
      offset += record.size;
    }
    const key = `${blockObjectKey(bucket.generation, block.entry_id, blockId)}-${crypto.randomUUID().slice(0, 8)}`;
    this.index.collectGarbage(key, Date.now() + SEAL_LEASE_MS);
    await withTimeout(recordsBucket(this.env).put(key, bytes), R2_TIMEOUT_MS, "put");
    this.ctx.storage.transactionSync(() => {
      block = this.index.block(blockId);
      if (!block || block.state === "sealed") return; // the object stays garbage
      const bucketNow = this.store.bucket();
      if (!bucketNow || bucketNow.renaming_to || bucketNow.renaming_from) return; // frozen for a rename: retried later
      this.index.commitSeal(block, key, total, offsets);
      this.index.forgetGarbage(key);
    });
  }

  private nextGarbageAt(): number | null {
    return this.ctx.storage.sql.exec<{ at: number | null }>("SELECT min(not_before_ms) AS at FROM r2_garbage").one().at;
  }

  // ---- rename: the object of the new name pulls the index from the old one --------------------

  /**
   * PUT /b/:old/rename, called on the object of the new name. Phases on this (target) side:
   * - reserve: a placeholder row (`renaming_from`) before the first await, so creates get 409;
   * - copy: pages pulled from the source under its attempt id; a page for any other attempt is
   *   refused, and every page checks the placeholder is still this attempt's;
   * - finishing (durable flag): from here the copy is never dropped, because the source may have
   *   handed over already; the hand-over call is idempotent and is simply retried, also by a
   *   later rename request.
   */
  async renameBucketInto(newName: string, oldName: string): Promise<Ok> {
    const existing = this.abandonStalledRename(this.store.bucket());
    if (existing && existing.renaming_from !== oldName) {
      return fail(409, existing.renaming_from ? `Bucket '${newName}' is being renamed` : `Bucket '${newName}' already exists`);
    }
    if (existing?.rename_finishing && existing.rename_attempt) return this.finishRenameInto(oldName, existing.rename_attempt);
    if (existing) return fail(409, `Bucket '${newName}' is being renamed`); // another request is copying

    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.store.clearData();
      this.ctx.storage.sql.exec(
        `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size,
           renaming_from, renaming_since_ms) VALUES (1, ?, '', ?, 0, 0, 'NONE', 0, ?, ?)`,
        newName,
        now,
        oldName,
        now,
      );
    });
    const source = this.sourceOf(oldName);
    let attempt: string | null = null;
    /** Drops this request's placeholder, unless another request or the finishing phase owns it. */
    const abandon = () => {
      const row = this.store.bucket();
      if (row?.renaming_from === oldName && row.rename_attempt === attempt && !row.rename_finishing) {
        this.ctx.storage.transactionSync(() => this.store.clearData());
      }
    };
    try {
      const started = await source.beginRenameOut(oldName, newName);
      if (!started.ok) {
        abandon();
        return { ok: false, error: started.error };
      }
      const { bucket } = started;
      attempt = started.attempt;
      this.ctx.storage.sql.exec(
        `UPDATE bucket SET generation = ?, created_at_ms = ?, max_block_size = ?, max_block_records = ?, quota_type = ?,
           quota_size = ?, rename_attempt = ? WHERE id = 1`,
        bucket.generation,
        bucket.created_at_ms,
        bucket.max_block_size,
        bucket.max_block_records,
        bucket.quota_type,
        bucket.quota_size,
        attempt,
      );
      for (const spec of BUCKET_TABLES) {
        let after: SqlStorageValue[] | null = null;
        do {
          const page = await source.exportRenamePage(oldName, attempt, spec.table, after);
          if (!page.ok || this.store.bucket()?.rename_attempt !== attempt) {
            abandon();
            return page.ok ? fail(409, `Bucket '${newName}' is being renamed`) : { ok: false, error: page.error };
          }
          this.ctx.storage.transactionSync(() => {
            importRows(this.ctx.storage.sql, spec.table, page.rows);
            this.ctx.storage.sql.exec("UPDATE bucket SET renaming_since_ms = ? WHERE id = 1", Date.now());
          });
          after = page.next;
        } while (after);
      }
      this.ctx.storage.sql.exec("UPDATE bucket SET rename_finishing = 1 WHERE id = 1");
    } catch (error) {
      abandon();
      throw error;
    }
    return this.finishRenameInto(oldName, attempt);
  }

  /** Asks the source to hand over (idempotent, retried) and then makes the copy the live bucket. */
  private async finishRenameInto(oldName: string, attempt: string): Promise<Ok> {
    const source = this.sourceOf(oldName);
    let handedOver: Ok | undefined;
    let lastError: unknown;
    for (let tries = 0; tries < 3 && handedOver === undefined; tries++) {
      try {
        handedOver = await source.finishRenameOut(oldName, attempt);
      } catch (error) {
        lastError = error; // the reply was lost or the source restarted: ask again
      }
    }
    if (handedOver === undefined) {
      return fail(503, `Rename of bucket '${oldName}' is not confirmed yet, please repeat it: ${String(lastError)}`);
    }
    const row = this.store.bucket();
    if (!row || row.rename_attempt !== attempt) return OK; // a concurrent retry completed it
    if (!handedOver.ok) {
      // The source never handed this attempt over (it was abandoned): the source still has the data.
      this.ctx.storage.transactionSync(() => this.store.clearData());
      return handedOver;
    }
    this.ctx.storage.sql.exec(
      `UPDATE bucket SET renaming_from = NULL, renaming_since_ms = NULL, rename_attempt = NULL, rename_finishing = 0,
         stats_version = stats_version + 1 WHERE id = 1`,
    );
    await this.scheduleAlarm(Date.now() + STATS_FLUSH_DELAY_MS);
    try {
      await this.syncRegistry();
    } catch (error) {
      console.error(`registering renamed bucket ${row.name} failed; the alarm retries:`, error);
    }
    return OK;
  }

  private sourceOf(oldName: string): DurableObjectStub<BucketObject> {
    return this.env.BUCKETS.getByName(oldName) as unknown as DurableObjectStub<BucketObject>;
  }

  /** Source side of a rename: freezes the bucket and hands over its settings with an attempt id. */
  async beginRenameOut(name: string, newName: string): Promise<Result<{ bucket: BucketRow; attempt: string }>> {
    const row = this.abandonStalledRename(this.store.bucket());
    if (!row || row.renaming_from || this.registering.has(name)) return bucketNotFound(name);
    if (row.renaming_to && row.renaming_to !== newName) return fail(409, `Bucket '${name}' is being renamed`);
    if (row.is_provisioned) return fail(409, `Can't rename provisioned bucket '${name}'`);
    const attempt = crypto.randomUUID();
    this.ctx.storage.sql.exec(
      "UPDATE bucket SET renaming_to = ?, rename_attempt = ?, renaming_since_ms = ? WHERE id = 1",
      newName,
      attempt,
      Date.now(),
    );
    return { ok: true, bucket: row, attempt };
  }

  async exportRenamePage(
    name: string,
    attempt: string,
    table: string,
    after: SqlStorageValue[] | null,
  ): Promise<Result<ExportPage>> {
    const row = this.store.bucket();
    if (!row || row.rename_attempt !== attempt) return fail(409, `Rename of bucket '${name}' was abandoned; try again`);
    const spec = BUCKET_TABLES.find((candidate) => candidate.table === table);
    if (!spec) throw new Error(`unknown table ${table}`);
    this.ctx.storage.sql.exec("UPDATE bucket SET renaming_since_ms = ? WHERE id = 1", Date.now());
    return { ok: true, ...exportTablePage(this.ctx.storage.sql, spec, after) };
  }

  /**
   * The index now lives under the new name: forget it here without purging R2. Idempotent per
   * attempt, and cannot fail once committed (the D1 registry row is removed by the alarm).
   */
  async finishRenameOut(name: string, attempt: string): Promise<Ok> {
    const done = this.ctx.storage.sql.exec("SELECT 1 FROM renamed_out WHERE attempt = ?", attempt).toArray().length > 0;
    if (done) return OK;
    const row = this.store.bucket();
    if (!row || row.rename_attempt !== attempt) return fail(409, `Rename of bucket '${name}' was abandoned; try again`);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.store.clearData();
      this.store.queuePurge(name, row.generation, now, false);
      this.ctx.storage.sql.exec(
        "INSERT INTO renamed_out (attempt, new_name, at_ms) VALUES (?, ?, ?)",
        attempt,
        row.renaming_to ?? "",
        now,
      );
    });
    await this.scheduleAlarm(now);
    try {
      await this.serialiseRegistryWrite(() => deleteRegistryRow(this.env.DB, name, row.generation));
    } catch (error) {
      console.error(`removing renamed bucket ${name} from D1 failed; the alarm retries:`, error);
    }
    return OK;
  }

  // ---- maintenance --------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const deadline = Date.now() + ALARM_BUDGET_MS;
    let retryAt: number | null = null;
    const attempt = async (task: () => Promise<void>) => {
      if (Date.now() >= deadline) return;
      try {
        await task();
      } catch (error) {
        console.error("bucket alarm task failed:", error);
        retryAt = Date.now() + ALARM_RETRY_MS;
      }
    };
    await attempt(() => this.flushStats());
    // A bucket being renamed is frozen: its index is being copied, so nothing may change it.
    const frozen = () => {
      const bucket = this.store.bucket();
      return bucket !== undefined && (bucket.renaming_to !== null || bucket.renaming_from !== null);
    };
    if (!frozen()) await attempt(() => this.sealIdleBlocks(deadline));
    await attempt(async () => {
      const bucket = this.store.bucket();
      if (bucket && !frozen()) this.ctx.storage.transactionSync(() => sweepExpiredUploads(this.opsContext(bucket), 1000));
    });
    await attempt(async () => this.queries.sweepExpired(Date.now()));
    await attempt(() => this.purgeDeletedGenerations(deadline));
    await attempt(() => this.deleteGarbage(deadline));
    await attempt(() => this.flushStats());
    const next = retryAt ?? this.nextMaintenanceAt();
    // scheduleAlarm keeps an earlier alarm a request may have set while this one ran.
    if (next !== null) await this.scheduleAlarm(Math.max(next, Date.now()));
  }

  /** When maintenance is next due, or null when there is nothing to do. */
  protected nextMaintenanceAt(): number | null {
    const row = this.store.bucket();
    const due: number[] = [];
    if (row && row.stats_version > row.stats_flushed_version) due.push(Date.now() + STATS_FLUSH_DELAY_MS);
    if (this.store.purges().length > 0) due.push(Date.now());
    const frozen = row !== undefined && (row.renaming_to !== null || row.renaming_from !== null);
    const sealAndLeases = frozen
      ? [Date.now() + RENAME_FROZEN_RECHECK_MS] // sealing waits until the rename is over
      : [this.index.nextIdleSealAt(SEAL_IDLE_MS), this.index.nextLeaseExpiry()];
    for (const at of [this.nextGarbageAt(), this.queries.nextExpiry(), ...sealAndLeases]) {
      if (at !== null) due.push(at);
    }
    return due.length > 0 ? Math.min(...due) : null;
  }

  protected async scheduleAlarm(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs) await this.ctx.storage.setAlarm(atMs);
  }

  /**
   * Records that usage changed. The D1 flush starts at once but is not awaited by the caller's
   * write (off the request path); concurrent changes coalesce into one flush in flight plus at
   * most one more. The alarm is the durable backstop if this object is evicted mid-flush.
   */
  protected async usageChanged(): Promise<void> {
    this.store.touchStats();
    await this.scheduleAlarm(Date.now() + STATS_FLUSH_DELAY_MS);
    if (this.flushInFlight) return;
    this.flushInFlight = (async () => {
      try {
        while (this.statsDirty()) {
          const wait = this.flushWaitMs(Date.now());
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          await this.syncRegistry();
        }
      } catch (error) {
        console.error("usage flush failed; the alarm retries:", error);
      } finally {
        this.flushInFlight = null;
      }
    })();
  }

  private flushInFlight: Promise<void> | null = null;
  /** Usage flushes this instance may start right away (a token bucket; see USAGE_FLUSH_BURST). */
  private flushTokens = USAGE_FLUSH_BURST;
  private flushTokensAt = 0;

  /**
   * How long the next usage flush must wait. A burst of USAGE_FLUSH_BURST flushes goes out at once
   * (a client that writes a few records and then reads /info or /list sees exact usage); under
   * steady ingest a bucket writes D1 at most USAGE_FLUSHES_PER_S times a second, so the wait is
   * below 1 s and the staleness bound holds.
   */
  private flushWaitMs(nowMs: number): number {
    const refill = ((nowMs - this.flushTokensAt) / 1000) * USAGE_FLUSHES_PER_S;
    this.flushTokens = Math.min(USAGE_FLUSH_BURST, this.flushTokens + Math.max(0, refill));
    this.flushTokensAt = nowMs;
    if (this.flushTokens >= 1) {
      this.flushTokens -= 1;
      return 0;
    }
    const wait = Math.ceil(((1 - this.flushTokens) * 1000) / USAGE_FLUSHES_PER_S);
    this.flushTokens = 0;
    this.flushTokensAt = nowMs + wait;
    return wait;
  }

  private statsDirty(): boolean {
    const row = this.store.bucket();
    return row !== undefined && row.stats_version > row.stats_flushed_version;
  }

  private async flushStats(): Promise<void> {
    if (this.statsDirty()) await this.syncRegistry();
  }

  /** Makes D1's registry row for this bucket equal to this object's state. */
  protected async syncRegistry(): Promise<void> {
    await this.serialiseRegistryWrite(async () => {
      const row = this.store.bucket();
      if (!row || row.renaming_from) return;
      const version = row.stats_version;
      const info = this.store.bucketInfo(row);
      await upsertRegistryRow(
        this.env.DB,
        {
          name: row.name,
          generation: row.generation,
          is_provisioned: row.is_provisioned,
          entry_count: info.entry_count,
          size: info.size,
          oldest_record: info.oldest_record,
          latest_record: info.latest_record,
        },
        Date.now(),
      );
      this.store.markStatsFlushed(version);
    });
  }

  /** Runs D1 registry writes one at a time, in call order; each reads state when it runs. */
  private async serialiseRegistryWrite(write: () => Promise<void>): Promise<void> {
    const next = this.registryChain.then(write);
    this.registryChain = next.catch(() => {});
    await next;
  }

  private async sealIdleBlocks(deadline: number): Promise<void> {
    for (const block of this.index.blocksToSeal(Date.now() - SEAL_IDLE_MS, 100)) {
      if (Date.now() >= deadline) return;
      await this.sealOnce(block.id); // joins a seal a write started, instead of skipping it
    }
  }

  private async purgeDeletedGenerations(deadline: number): Promise<void> {
    for (const { generation, name, purge_objects: purgeObjects } of this.store.purges()) {
      await this.serialiseRegistryWrite(() => deleteRegistryRow(this.env.DB, name, generation));
      let done = purgeObjects === 0; // a renamed bucket's objects live on under the new name
      while (!done && Date.now() < deadline) done = await purgePrefixPage(recordsBucket(this.env), generationPrefix(generation));
      if (done) this.store.finishPurge(generation);
    }
  }

  private async deleteGarbage(deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      const keys = this.ctx.storage.sql
        .exec<{ key: string }>("SELECT key FROM r2_garbage WHERE not_before_ms <= ? LIMIT ?", Date.now(), R2_DELETE_BATCH)
        .toArray()
        .map((row) => row.key);
      if (keys.length === 0) return;
      await withTimeout(recordsBucket(this.env).delete(keys), R2_TIMEOUT_MS, "delete");
      for (const key of keys) this.ctx.storage.sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The bucket row if this object holds a live bucket, or the error a request should get. */
  protected liveBucket(name: string): BucketRow | { ok: false; error: ErrorInfo } {
    const row = this.abandonStalledRename(this.store.bucket());
    if (!row || this.registering.has(name)) return bucketNotFound(name);
    if (row.renaming_from || row.renaming_to) return fail(409, `Bucket '${name}' is being renamed`);
    return row;
  }

  /**
   * A rename whose copy made no progress for RENAME_STALE_MS was abandoned (the caller went away):
   * the source thaws (its attempt id is cleared, so the old copy can no longer finish) and a
   * target placeholder is dropped. Returns the row as it is afterwards.
   */
  private abandonStalledRename(row: BucketRow | undefined): BucketRow | undefined {
    if (!row || (!row.renaming_from && !row.renaming_to)) return row;
    if (row.rename_finishing) return row; // the source may have handed over: only a retry resolves it
    if (Date.now() - (row.renaming_since_ms ?? 0) < RENAME_STALE_MS) return row;
    if (row.renaming_from) {
      this.ctx.storage.transactionSync(() => this.store.clearData());
      return undefined;
    }
    this.ctx.storage.sql.exec(
      "UPDATE bucket SET renaming_to = NULL, rename_attempt = NULL, renaming_since_ms = NULL WHERE id = 1",
    );
    return this.store.bucket();
  }
}
