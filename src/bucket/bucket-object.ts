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
import { generationPrefix, purgePrefixPage, R2_DELETE_BATCH, R2_TIMEOUT_MS, withTimeout } from "../storage/r2";
import { type BucketInfo, type BucketRow, BucketStore, type EntryInfo } from "./bucket-store";
import { deleteRegistryRow, upsertRegistryRow } from "./registry";
import { BUCKET_TABLES, type ExportPage, exportTablePage, importRows } from "./rename";
import { migrate } from "./schema";

/** Usage reaches D1 at most this long after a write (the documented staleness bound is 1 s). */
export const STATS_FLUSH_DELAY_MS = 500;
/** One alarm run stops starting new work after this long and reschedules itself. */
export const ALARM_BUDGET_MS = 10_000;
/** Retry delay after an alarm task failed (D1 or R2 unavailable). */
export const ALARM_RETRY_MS = 5_000;

export interface BucketDetails {
  info: BucketInfo;
  settings: BucketSettings;
  entries: EntryInfo[];
}

type Ok = Result<Record<never, never>>;
const OK = { ok: true } as const;

const bucketNotFound = (name: string) => fail(404, `Bucket '${name}' is not found`);

export class BucketObject extends DurableObject<Bindings> {
  protected readonly store: BucketStore;
  /** D1 registry writes of this object, serialised so an older sync never lands after a newer one. */
  private registryChain: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new BucketStore(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
    });
  }

  // ---- bucket lifecycle -------------------------------------------------------------------

  /** POST /b/:bucket. The name becomes visible in /list before this returns. */
  async createBucket(name: string, settings: BucketSettings): Promise<Ok> {
    if (this.store.bucket()) return fail(409, `Bucket '${name}' already exists`);
    this.store.insertBucket(name, crypto.randomUUID(), settings, Date.now());
    await this.syncRegistry();
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

  // ---- rename: the object of the new name pulls the index from the old one --------------------

  /** PUT /b/:old/rename, called on the object of the new name. */
  async renameBucketInto(newName: string, oldName: string): Promise<Ok> {
    const existing = this.store.bucket();
    if (existing && existing.renaming_from !== oldName) return fail(409, `Bucket '${newName}' already exists`);
    const source = this.env.BUCKETS.getByName(oldName) as unknown as DurableObjectStub<BucketObject>;
    const started = await source.beginRenameOut(oldName, newName);
    if (!started.ok) return { ok: false, error: started.error };
    // A retried rename starts the copy over.
    this.ctx.storage.transactionSync(() => {
      this.store.clearData();
      this.ctx.storage.sql.exec(
        `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size, is_provisioned, renaming_from)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
        newName,
        started.bucket.generation,
        started.bucket.created_at_ms,
        started.bucket.max_block_size,
        started.bucket.max_block_records,
        started.bucket.quota_type,
        started.bucket.quota_size,
        oldName,
      );
    });
    for (const spec of BUCKET_TABLES) {
      let after: SqlStorageValue[] | null = null;
      do {
        const page: ExportPage = await source.exportRenamePage(spec.table, after);
        this.ctx.storage.transactionSync(() => importRows(this.ctx.storage.sql, spec.table, page.rows));
        after = page.next;
      } while (after);
    }
    this.ctx.storage.sql.exec("UPDATE bucket SET renaming_from = NULL, stats_version = stats_version + 1 WHERE id = 1");
    await source.finishRenameOut(oldName);
    await this.syncRegistry();
    await this.scheduleAlarm(Date.now() + STATS_FLUSH_DELAY_MS);
    return OK;
  }

  /** Source side of a rename: freezes the bucket and hands over its settings row. */
  async beginRenameOut(name: string, newName: string): Promise<Result<{ bucket: BucketRow }>> {
    const row = this.store.bucket();
    if (!row || row.renaming_from) return bucketNotFound(name);
    if (row.renaming_to && row.renaming_to !== newName) return fail(409, `Bucket '${name}' is being renamed`);
    if (row.is_provisioned) return fail(409, `Can't rename provisioned bucket '${name}'`);
    this.ctx.storage.sql.exec("UPDATE bucket SET renaming_to = ? WHERE id = 1", newName);
    return { ok: true, bucket: { ...row, renaming_to: newName } };
  }

  async exportRenamePage(table: string, after: SqlStorageValue[] | null): Promise<ExportPage> {
    const spec = BUCKET_TABLES.find((candidate) => candidate.table === table);
    if (!spec) throw new Error(`unknown table ${table}`);
    return exportTablePage(this.ctx.storage.sql, spec, after);
  }

  /** The index now lives under the new name: forget it here without purging R2. */
  async finishRenameOut(name: string): Promise<void> {
    const generation = this.store.bucket()?.generation;
    this.ctx.storage.transactionSync(() => this.store.clearData());
    if (generation) await this.serialiseRegistryWrite(() => deleteRegistryRow(this.env.DB, name, generation));
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
    await attempt(() => this.purgeDeletedGenerations(deadline));
    await attempt(() => this.deleteGarbage(deadline));
    const next = retryAt ?? this.nextMaintenanceAt();
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
  }

  /** When maintenance is next due, or null when there is nothing to do. */
  protected nextMaintenanceAt(): number | null {
    const row = this.store.bucket();
    const due: number[] = [];
    if (row && row.stats_version > row.stats_flushed_version) due.push(Date.now() + STATS_FLUSH_DELAY_MS);
    if (this.store.purges().length > 0) due.push(Date.now());
    const garbage = this.ctx.storage.sql.exec<{ at: number | null }>("SELECT min(not_before_ms) AS at FROM r2_garbage").one().at;
    if (garbage !== null) due.push(garbage);
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
        while (this.statsDirty()) await this.syncRegistry();
      } catch (error) {
        console.error("usage flush failed; the alarm retries:", error);
      } finally {
        this.flushInFlight = null;
      }
    })();
  }

  private flushInFlight: Promise<void> | null = null;

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

  private async purgeDeletedGenerations(deadline: number): Promise<void> {
    for (const { generation, name } of this.store.purges()) {
      await this.serialiseRegistryWrite(() => deleteRegistryRow(this.env.DB, name, generation));
      let done = false;
      while (!done && Date.now() < deadline) done = await purgePrefixPage(this.env.RECORDS, generationPrefix(generation));
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
      await withTimeout(this.env.RECORDS.delete(keys), R2_TIMEOUT_MS, "delete");
      for (const key of keys) this.ctx.storage.sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The bucket row if this object holds a live bucket, or the error a request should get. */
  protected liveBucket(name: string): BucketRow | { ok: false; error: ErrorInfo } {
    const row = this.store.bucket();
    if (!row || row.renaming_from) return bucketNotFound(name);
    if (row.renaming_to) return fail(409, `Bucket '${name}' is being renamed`);
    return row;
  }
}
