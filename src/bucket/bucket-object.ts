/**
 * One SQLite-backed Durable Object per bucket, addressed by bucket name (`getByName`); it knows
 * its name from its id. RPC methods only: it never sees a `Request`, takes plain validated values
 * from the edge and returns tagged results (`{ok: true, …} | {ok: false, error}`) for expected
 * outcomes. A facade: each method guards (is the bucket live?), opens the transaction and
 * delegates to a collaborator — record writes and reads (record-ops, record-reads, uploads), queries
 * (query-engine), sealing, garbage, rename, usage flush and the alarm (duties/). The guard, the
 * transactions and the alarm are in object-base.ts.
 */
import type { BucketSettings } from "../config";
import type { Result } from "../errors";
import type { BodyLocation, ItemOutcome, LabelChanges, RecordMeta, RecordView, StagedItem, UploadTicket } from "../model/records";
import type { ReplicationSpec, ReplicationStatus } from "../model/replications";
import { SYSTEM_BUCKET } from "../system/events";
import { type BucketDetails, bucketDetails } from "./bucket-store";
import { newEffects } from "./duties/write-effects";
import type { LifecycleSettings } from "./lifecycle-settings";
import { BucketObjectBase } from "./object-base";
import type { Batch, BatchLimits, CursorCommit, QueryScope, QuerySpec } from "./query-engine";
import { removeMatching } from "./query-removal";
import { removeBatch, removeEntryTree, removeRecord, renameEntryTree, updateLabels, updateLabelsBatch } from "./record-edits";
import { entryNotFound } from "./record-errors";
import { writeStagedCalls } from "./record-ops";
import { readRecord, stagedBytes } from "./record-reads";
import type { ExportPage } from "./rename";
import type { BucketRow } from "./tables/bucket-row";
import { abortUpload, commitUpload, reserveUpload } from "./uploads";
import { WriteGroups, type Written } from "./write-group";

type Ok = Result<Record<never, never>>;
const OK = { ok: true } as const;

export class BucketObject extends BucketObjectBase {
  // ---- bucket lifecycle -------------------------------------------------------------------

  /**
   * POST /b/:bucket. The name becomes visible in /list before this returns. The name is persisted
   * in the bucket row, so an id that carries no name (idFromString) still knows it afterwards.
   * `provisioned` buckets (the server's own, e.g. `$system`) refuse changes and deletion with 409.
   */
  async createBucket(name: string, settings: BucketSettings, provisioned = false): Promise<Ok> {
    const idName = this.ctx.id.name;
    if (idName !== undefined && idName !== name) throw new Error(`the object of bucket '${idName}' cannot create '${name}'`);
    return this.parts.lifecycle.create(name, settings, this.parts.rename.abandonStalled(this.tables.bucket.get()), provisioned);
  }

  /** GET /b/:bucket */
  async getBucket(): Promise<Result<BucketDetails>> {
    const row = this.liveBucket();
    return "error" in row ? row : { ok: true, ...bucketDetails(row, this.tables.entries) };
  }

  /** HEAD /b/:bucket */
  async headBucket(): Promise<Ok> {
    const row = this.liveBucket();
    return "error" in row ? row : OK;
  }

  /**
   * A bucket from `RS_BUCKET_<ID>_*`: created if missing, else given the environment's settings;
   * either way marked provisioned, so API changes and deletion answer 409. Idempotent.
   */
  async provisionBucket(name: string, settings: BucketSettings): Promise<Ok> {
    const row = this.liveBucket();
    return "error" in row ? this.createBucket(name, settings, true) : this.parts.lifecycle.provision(row, settings);
  }

  /** A provisioned bucket whose group left the environment becomes an ordinary one. Idempotent. */
  async unprovisionBucket(): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    if (!row.is_provisioned) return OK;
    this.tables.bucket.unprovision();
    await this.parts.usage.syncRegistry().catch((error: unknown) => {
      console.error(`registering unprovisioned bucket ${row.name} failed; the alarm retries:`, error);
    });
    return OK;
  }

  /** PUT /b/:bucket: missing fields keep their current value; new block limits apply to new blocks. */
  async updateBucketSettings(patch: Partial<BucketSettings>): Promise<Ok> {
    const row = this.liveBucket();
    return "error" in row ? row : this.parts.lifecycle.updateSettings(row, patch);
  }

  /** DELETE /b/:bucket: the index goes at once, the alarm purges the R2 objects. */
  async deleteBucket(): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const policies = this.tables.lifecyclePolicies.all();
    const deleted = await this.parts.lifecycle.delete(row);
    // A run in progress ends with the bucket (reported if it removed something).
    if (deleted.ok) for (const policy of policies) await this.parts.lifecycleRuns.endPartial(policy);
    return deleted;
  }

  // ---- records ------------------------------------------------------------------------------

  /**
   * Writes small records whose bytes travel with the call, staged in SQLite in one transaction,
   * shared with the calls that arrive meanwhile (group commit). Each record is checked on its own,
   * so one record's failure (duplicate, quota) leaves the others written. The caller's
   * acknowledgement follows the commit (the output gate holds it until durable).
   */
  async writeRecords(items: StagedItem[]): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    // The group's transaction checks the bucket (once for all its calls).
    return this.writeGroups.write(items);
  }

  /** Concurrent `writeRecords` calls commit together (see write-group.ts). */
  private readonly writeGroups = new WriteGroups({ commit: (calls) => this.commitWrites(calls) });

  /** One transaction for the calls of a write group; the bucket is checked again as it may have gone meanwhile. */
  private commitWrites(calls: StagedItem[][]): { written: Written[]; after: () => Promise<void> } {
    const row = this.liveBucket();
    if ("error" in row) return { written: calls.map(() => row), after: async () => {} };
    const effects = newEffects();
    const outcomes = this.ctx.storage.transactionSync(() => {
      const ops = this.opsContext(row);
      const written = writeStagedCalls(ops, effects, calls);
      ops.journal?.finish();
      if (effects.usageChanged) {
        if (this.parts.usage.needsMark(row)) this.tables.bucket.touchStats(ops.nowMs);
        effects.statsMarked = true;
      }
      this.parts.traffic.countWrites(row.name, effects.written, ops.nowMs);
      return written;
    });
    return {
      written: outcomes.map((list) => ({ ok: true, outcomes: list })),
      after: () => this.parts.effects.afterWrite(effects),
    };
  }

  /** Reserves timestamp and quota for a record the edge streams straight to R2. */
  async reserveUpload(meta: RecordMeta): Promise<Result<UploadTicket>> {
    const row = this.liveBucket();
    return "error" in row ? row : reserveUpload(this.uploadHost, row, meta);
  }

  /** The streamed object is durable in R2: make the record visible. */
  async commitUpload(entry: string, ts: number, objectKey: string): Promise<Ok> {
    return commitUpload(this.uploadHost, this.liveBucket(), entry, ts, objectKey);
  }

  /** The upload failed or was cut short: release the timestamp; the object is deleted by the alarm. */
  async abortUpload(objectKey: string): Promise<void> {
    await abortUpload(this.uploadHost, this.tables.bucket.get(), objectKey);
  }

  /**
   * GET/HEAD one record: by timestamp, or the latest when `ts` is null. A caller that may send only
   * part of the body (a ranged link) passes `countRead: false` and counts what it sends itself.
   */
  async readRecord(
    entry: string,
    ts: number | null,
    withBody: boolean,
    countRead = true,
  ): Promise<Result<{ record: RecordView; body: BodyLocation }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const read = readRecord(this.index, row.name, entry, ts, withBody);
    if (read.ok && withBody && countRead) await this.parts.traffic.countReads(row.name, [read.record], Date.now());
    return read;
  }

  /** Counts one record read of `bytes` in the usage window (a ranged read sends only its range). */
  async countRead(entry: string, bytes: number): Promise<void> {
    const row = this.liveBucket();
    if ("error" in row) return;
    await this.parts.traffic.countReads(row.name, [{ entry, size: bytes }], Date.now());
  }

  /** PATCH one record's labels (empty value deletes a label). */
  async updateRecordLabels(entry: string, ts: number, changes: LabelChanges): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => updateLabels(ops, entry, ts, changes));
    if (outcome.ok) await this.parts.usage.changed();
    return outcome.ok ? OK : outcome;
  }

  /** Batch label updates (v1 PATCH …/batch, v2 /io update): one outcome per item, in order. */
  async updateLabelsMany(
    items: { entry: string; ts: number; changes: LabelChanges }[],
  ): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcomes = this.ctx.storage.transactionSync(() => {
      const ops = this.opsContext(row);
      const updated = updateLabelsBatch(ops, items);
      ops.journal?.finish();
      return updated;
    });
    if (outcomes.some((outcome) => outcome.ok)) await this.parts.usage.changed();
    return { ok: true, outcomes };
  }

  /** Batch removals (v1 DELETE …/batch, v2 /io remove): one outcome per item, in order. */
  async removeMany(items: { entry: string; ts: number }[]): Promise<Result<{ outcomes: ItemOutcome[] }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcomes = this.ctx.storage.transactionSync(() => removeBatch(this.opsContext(row), items));
    if (outcomes.some((outcome) => outcome.ok)) await this.parts.effects.afterRemoval();
    return { ok: true, outcomes };
  }

  /** True when the entry exists (batch endpoints answer 404 for a missing entry as a whole). */
  async hasEntry(entry: string): Promise<Result<{ exists: boolean }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    return { ok: true, exists: this.index.entry(entry) !== undefined };
  }

  /** DELETE one record. */
  async removeRecord(entry: string, ts: number): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => removeRecord(ops, entry, ts));
    if (outcome.ok) await this.parts.effects.afterRemoval();
    return outcome.ok ? OK : outcome;
  }

  /** DELETE an entry with all its descendants (`a` removes `a/b`, `a/$meta`, …). */
  async removeEntry(entryName: string): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => removeEntryTree(ops, entryName));
    if (!outcome.ok) return outcome;
    await this.parts.effects.afterRemoval();
    return OK;
  }

  /** PUT an entry's new name; descendants move along and missing parents of the target appear. */
  async renameEntry(entryName: string, newName: string): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const outcome = this.transact(row, (ops) => {
      const renamed = renameEntryTree(ops, entryName, newName);
      if (renamed.ok) this.parts.replications.entryRenamed(entryName, newName);
      return renamed;
    });
    if (!outcome.ok) return outcome;
    await this.parts.usage.changed();
    return OK;
  }

  // ---- queries --------------------------------------------------------------------------------

  /** POST …/q (QUERY), GET …/q (legacy), POST /io/:bucket/q: returns the new query id. */
  async createQuery(spec: QuerySpec): Promise<Result<{ id: number }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const single = spec.kind === "entry" ? spec.entries[0] : undefined;
    if (single !== undefined && !this.index.entry(single)) return entryNotFound(row.name, single);
    const now = Date.now();
    const created = this.ctx.storage.transactionSync(() => this.parts.queries.create(spec, now));
    if (created.ok) await this.scheduleAlarm(now + spec.ttlSeconds * 1000);
    return created;
  }

  /**
   * The next batch of a query (a single-record read is a batch of one). A batch with records
   * comes with the cursor position to `commitQuery` once the edge holds its bytes.
   */
  async readQuery(
    id: number,
    scope: QueryScope,
    limits: BatchLimits,
    withBody: boolean,
  ): Promise<Result<{ batch: Batch; commit: CursorCommit | null }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const nowMs = Date.now();
    const next = this.ctx.storage.transactionSync(() =>
      this.parts.queries.next(id, scope, limits, withBody, nowMs, (record) => stagedBytes(this.index, row.name, record)),
    );
    if (next.ok && withBody && !next.batch.onlyMetadata) await this.parts.traffic.countReads(row.name, next.batch.records, nowMs);
    return next;
  }

  /** Advances a query past a batch the edge is sending; `committed` false: another read moved it first. */
  async commitQuery(commit: CursorCommit): Promise<Result<{ committed: boolean }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    return { ok: true, committed: this.parts.queries.commit(commit) };
  }

  /** REMOVE queries: deletes matching records in one transaction; a strict-mode error removes nothing. */
  async removeByQuery(spec: QuerySpec): Promise<Result<{ removed: number }>> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    const removed = removeMatching(this.parts.queries, (operation) => this.transact(row, operation), spec);
    if (removed.ok) await this.parts.effects.afterRemoval();
    return removed;
  }

  // ---- lifecycle policies ---------------------------------------------------------------------

  /** The policies D1 holds for this bucket; the alarm runs them (a policy that stays keeps its progress). */
  async setLifecycles(policies: { name: string; settings: LifecycleSettings }[]): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    // Policies a rename copied stay until they are moved to this name in D1, which may not list them yet.
    await this.parts.lifecycleRuns.receive(policies, this.parts.lifecycleRename.staleNames());
    const due = this.parts.lifecycleRuns.nextDueAt();
    if (due !== null) await this.scheduleAlarm(due);
    return OK;
  }

  /** Which of these policies have a run in progress in this object (none once the bucket is gone). */
  async runningLifecycles(names: string[]): Promise<string[]> {
    return this.parts.lifecycleRuns.running(names);
  }

  // ---- replications (source side) -------------------------------------------------------------

  /**
   * The replications D1 holds with this bucket as source. Matching writes are logged from now on;
   * a replication missing from the set is dropped with its log.
   */
  async setReplications(replications: ReplicationSpec[]): Promise<Ok> {
    const row = this.liveBucket();
    if ("error" in row) return row;
    this.parts.replications.set(replications);
    const due = this.parts.replicationSend.nextDueAt();
    if (due !== null) await this.scheduleAlarm(Math.max(due, Date.now()));
    return OK;
  }

  /** Status of these replications in this object (zeros for one it does not run). */
  async replicationStatus(names: string[]): Promise<ReplicationStatus[]> {
    return this.parts.replications.status(names);
  }

  // ---- rename: the object of the new name pulls the index from the old one --------------------

  /** PUT /b/:old/rename, called on the object of the new name. */
  async renameBucketInto(oldName: string): Promise<Ok> {
    return this.parts.rename.into(this.bucketName, oldName);
  }

  /** Source side of a rename: freezes the bucket and hands over its settings with an attempt id. */
  async beginRenameOut(newName: string): Promise<Result<{ bucket: BucketRow; attempt: string }>> {
    return this.parts.rename.beginOut(this.bucketName, newName, this.parts.lifecycle.registering);
  }

  async exportRenamePage(attempt: string, table: string, after: SqlStorageValue[] | null): Promise<Result<ExportPage>> {
    return this.parts.rename.exportPage(this.bucketName, attempt, table, after);
  }

  /** The index now lives under the new name: forget it here without purging R2. */
  async finishRenameOut(attempt: string): Promise<Ok> {
    return this.parts.rename.finishOut(this.bucketName, attempt);
  }

  // ---- usage records --------------------------------------------------------------------------

  /** Called on the `$system` object by a bucket that handed usage windows up to this end to D1. */
  async armUsageReport(windowEndMs: number): Promise<void> {
    if (this.bucketName !== SYSTEM_BUCKET)
      throw new Error(`usage reports are written by ${SYSTEM_BUCKET}, not '${this.bucketName}'`);
    await this.parts.usageReport.arm(windowEndMs);
  }
}
