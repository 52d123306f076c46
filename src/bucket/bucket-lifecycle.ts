/**
 * Creating, provisioning, changing and deleting the bucket this object holds. A create is all or nothing for the client:
 * the bucket exists for other requests only once D1 has its registry row.
 */
import type { BucketSettings } from "../config";
import { fail, type Result } from "../errors";
import { bucketSettings } from "./bucket-store";
import type { UsageFlush } from "./duties/usage-flush";
import { type BucketTables, clearBucketData } from "./tables";
import type { BucketRow } from "./tables/bucket-row";

type Ok = Result<Record<never, never>>;
const OK = { ok: true } as const;

export interface BucketLifecycleDeps {
  storage: DurableObjectStorage;
  tables: BucketTables;
  usage: UsageFlush;
  now: () => number;
  scheduleAlarm: (atMs: number) => Promise<void>;
}

export class BucketLifecycle {
  /** Whether a create awaits D1 (in memory: an object restart also ends the create call). */
  registering = false;

  constructor(private readonly deps: BucketLifecycleDeps) {}

  /** Creates the bucket; `existing` is the current row after a stalled rename was abandoned. */
  async create(name: string, settings: BucketSettings, existing: BucketRow | undefined, provisioned = false): Promise<Ok> {
    if (existing?.renaming_from) return fail(409, `Bucket '${name}' is being renamed`);
    if (existing) return fail(409, `Bucket '${name}' already exists`);
    const { storage, tables, usage } = this.deps;
    const generation = crypto.randomUUID();
    tables.bucket.insert(name, generation, settings, this.deps.now(), provisioned);
    usage.resetBurst();
    // Until D1 has it, the bucket does not exist for other requests (the create may be undone).
    this.registering = true;
    try {
      await usage.syncRegistry();
    } catch (error) {
      // Undo; the alarm removes a registry row that D1 may have written before failing (only if
      // it is still this generation's).
      console.error(`registering bucket ${name} in D1 failed; the create is undone:`, error);
      const now = this.deps.now();
      storage.transactionSync(() => {
        clearBucketData(tables);
        tables.purges.queue(name, generation, now, true);
      });
      await this.deps.scheduleAlarm(now);
      return fail(503, `Bucket '${name}' could not be registered, please try again: ${String(error)}`);
    } finally {
      this.registering = false;
    }
    return OK;
  }

  /** An existing bucket given `RS_BUCKET_<ID>_*` settings and marked provisioned. Idempotent. */
  async provision(row: BucketRow, settings: BucketSettings): Promise<Ok> {
    this.deps.tables.bucket.provision(settings);
    await this.deps.usage.syncRegistry().catch((error: unknown) => {
      console.error(`registering provisioned bucket ${row.name} failed; the alarm retries:`, error);
    });
    return OK;
  }

  /** Missing fields keep their current value; new block limits apply to new blocks. */
  updateSettings(row: BucketRow, patch: Partial<BucketSettings>): Ok {
    if (row.is_provisioned) return fail(409, `Can't change settings of provisioned bucket '${row.name}'`);
    this.deps.tables.bucket.updateSettings({ ...bucketSettings(row), ...patch });
    return OK;
  }

  /**
   * The index goes at once (the name is free when this returns); the R2 objects of this
   * generation are purged by the alarm.
   */
  async delete(row: BucketRow): Promise<Ok> {
    if (row.is_provisioned) return fail(409, `Can't remove provisioned bucket '${row.name}'`);
    const { storage, tables } = this.deps;
    const now = this.deps.now();
    storage.transactionSync(() => {
      clearBucketData(tables);
      tables.purges.queue(row.name, row.generation, now, true);
    });
    await this.deps.scheduleAlarm(now);
    // Visible in /list before we answer; if D1 fails here the alarm retries from r2_purges.
    await this.deps.usage.deleteRegistryRow(row.name, row.generation);
    return OK;
  }
}
