/**
 * What every RPC method of the bucket object stands on: the object's collaborators (object-parts),
 * its name, the guard (is the bucket live?), transactions that carry the replication journal, the
 * one alarm and its scheduling. The RPC surface itself is BucketObject (bucket-object.ts).
 */
import { DurableObject } from "cloudflare:workers";
import { type BucketSettings, configFromEnv } from "../config";
import type { Bindings } from "../env";
import { type ErrorInfo, fail, type Result } from "../errors";
import type { ItemOutcome, StagedItem } from "../model/records";
import { systemBucketSettings } from "../system/events";
import { runMaintenance } from "./duties/maintenance";
import { assembleParts, type ObjectParts } from "./object-parts";
import { writeOwnRecords } from "./own-records";
import type { RecordIndex } from "./record-index";
import type { OpsContext } from "./record-ops";
import { migrate } from "./schema";
import type { BucketTables } from "./tables";
import type { BucketRow } from "./tables/bucket-row";
import { transactOutcome } from "./transaction";
import type { UploadHost } from "./uploads";

/** How long past its time a stored alarm may be before it counts as lost (one run takes ~10 s). */
const LOST_ALARM_MS = 60_000;

const bucketNotFound = (name: string) => fail(404, `Bucket '${name}' is not found`);

export abstract class BucketObjectBase extends DurableObject<Bindings> {
  protected readonly parts: ObjectParts;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.parts = assembleParts(
      ctx.storage,
      () => this.env,
      (atMs) => this.scheduleAlarm(atMs),
      () => {
        const row = this.liveBucket();
        return "error" in row ? null : row;
      },
      { name: () => this.ctx.id.name ?? this.tables.bucket.get()?.name, write: (items) => this.writeOwn(items) },
    );
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
    });
  }

  protected get tables(): BucketTables {
    return this.parts.tables;
  }

  protected get index(): RecordIndex {
    return this.parts.index;
  }

  /** This bucket's name: the object's id carries it; the bucket row keeps it for ids without one. */
  protected get bucketName(): string {
    const name = this.ctx.id.name ?? this.tables.bucket.get()?.name;
    if (name === undefined) throw new Error("bucket object addressed without a name");
    return name;
  }

  abstract createBucket(name: string, settings: BucketSettings, provisioned?: boolean): Promise<Result<Record<never, never>>>;

  abstract writeRecords(items: StagedItem[]): Promise<Result<{ outcomes: ItemOutcome[] }>>;

  /** Writes into this bucket (`$system`'s reports and events), creating it first if it is missing. */
  protected writeOwn(items: StagedItem[]): Promise<ItemOutcome[]> {
    const create = () => this.createBucket(this.bucketName, systemBucketSettings(configFromEnv(this.env)), true);
    return writeOwnRecords({ name: this.bucketName, write: (own) => this.writeRecords(own), create }, items);
  }

  // ---- maintenance --------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const next = await runMaintenance(this.parts.duties, () => Date.now());
    // scheduleAlarm keeps an earlier alarm a request may have set while this one ran.
    if (next !== null) await this.scheduleAlarm(Math.max(next, Date.now()));
  }

  /**
   * Sets the stored alarm again when it is more than `overdueMs` past its time; true when it did.
   * For `npm start` (scripts/lib/launcher.ts), at the start and then every 10 s: local workerd
   * fires alarms from its own list beside each object's stored alarm, and a stop during an alarm
   * run, or a run that fired for another time than the one stored, can leave the object's next
   * alarm out of that list, so nothing fires it again (seen: a lifecycle run stopped for good).
   */
  async rearmLostAlarm(overdueMs = 0): Promise<boolean> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > Date.now() - overdueMs) return false;
    // A different time: setting the stored one again would change nothing and schedule nothing.
    await this.ctx.storage.setAlarm(Math.max(Date.now(), current + 1));
    return true;
  }

  protected async scheduleAlarm(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    // An alarm stored long past its time was lost (it will not fire): keeping it would stop every
    // duty of this bucket for good, since only an earlier time replaces it. So it is set again.
    const lost = current !== null && current < Date.now() - LOST_ALARM_MS;
    if (current === null || current > atMs || lost) await this.ctx.storage.setAlarm(atMs);
  }

  // ---- guard, transaction, effects ----------------------------------------------------------

  /** The bucket row if this object holds a live bucket, or the error a request should get. */
  protected liveBucket(): BucketRow | { ok: false; error: ErrorInfo } {
    const row = this.parts.rename.abandonStalled(this.tables.bucket.get());
    if (!row || this.parts.lifecycle.registering) return bucketNotFound(this.bucketName);
    if (row.renaming_from || row.renaming_to) return fail(409, `Bucket '${row.name}' is being renamed`);
    return row;
  }

  protected opsContext(bucket: BucketRow, nowMs = Date.now()): OpsContext {
    return { index: this.index, bucket, nowMs, journal: this.parts.replications.journal(bucket.name, nowMs) };
  }

  /** Runs one operation in a transaction, rolling it back when it returns a failure. */
  protected transact(bucket: BucketRow, operation: (ops: OpsContext) => ItemOutcome): ItemOutcome {
    return transactOutcome(this.ctx.storage, () => {
      const ops = this.opsContext(bucket);
      const outcome = operation(ops);
      if (outcome.ok) ops.journal?.finish();
      return outcome;
    });
  }

  protected get uploadHost(): UploadHost {
    const { index, effects, traffic } = this.parts;
    return {
      storage: this.ctx.storage,
      index,
      effects,
      traffic,
      scheduleAlarm: (atMs) => this.scheduleAlarm(atMs),
      opsContext: (bucket, nowMs) => this.opsContext(bucket, nowMs),
      transact: (bucket, operation) => this.transact(bucket, operation),
    };
  }
}
