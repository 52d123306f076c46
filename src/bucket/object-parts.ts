/**
 * The bucket object's collaborators, wired once per instance: each duty gets its dependencies
 * explicitly (the SQLite tables, the storage for transactions, the clock, the bindings).
 */
import { configFromEnv } from "../config";
import type { Bindings } from "../env";
import type { ItemOutcome, StagedItem } from "../model/records";
import { bucketObject } from "../placement";
import { entrySegment, recordSystemEvent, SYSTEM_BUCKET } from "../system/events";
import { BucketLifecycle } from "./bucket-lifecycle";
import { bucketDuties } from "./duties";
import { Garbage } from "./duties/garbage";
import { LifecycleRenameFollow, type PolicySet } from "./duties/lifecycle-rename";
import { LifecycleRuns, windowRemover } from "./duties/lifecycles";
import type { MaintenanceDuty } from "./duties/maintenance";
import { Rename, type RenameSource } from "./duties/rename";
import { ReplicationSend } from "./duties/replication-send";
import type { OutboundFetch } from "./duties/replication-wire";
import { Sealing } from "./duties/sealing";
import { UsageFlush } from "./duties/usage-flush";
import { UsageReport } from "./duties/usage-report";
import { UsageTraffic } from "./duties/usage-traffic";
import { WriteEffects } from "./duties/write-effects";
import { QueryEngine } from "./query-engine";
import { RecordIndex } from "./record-index";
import { sweepExpiredUploads } from "./record-ops";
import { Replications } from "./replications";
import { type BucketTables, openTables } from "./tables";
import type { BucketRow } from "./tables/bucket-row";

/** The one call a bucket makes on the `$system` object for usage (see duties/usage-report.ts). */
interface UsageReportArm {
  armUsageReport(windowEndMs: number): Promise<void>;
}

export interface ObjectParts {
  tables: BucketTables;
  index: RecordIndex;
  queries: QueryEngine;
  usage: UsageFlush;
  traffic: UsageTraffic;
  usageReport: UsageReport;
  sealing: Sealing;
  garbage: Garbage;
  rename: Rename;
  lifecycle: BucketLifecycle;
  effects: WriteEffects;
  lifecycleRuns: LifecycleRuns;
  lifecycleRename: LifecycleRenameFollow;
  replications: Replications;
  replicationSend: ReplicationSend;
  /** Outbound requests of the replication sender; a test replaces `fetch`. */
  outbound: { fetch: OutboundFetch };
  /** The alarm's duties, in order. */
  duties: readonly MaintenanceDuty[];
}

/** A bucket being renamed is frozen: its index is being copied, so nothing may change it. */
export function isFrozen(tables: BucketTables): boolean {
  const row = tables.bucket.get();
  return row !== undefined && (row.renaming_to !== null || row.renaming_from !== null);
}

export function assembleParts(
  storage: DurableObjectStorage,
  /** Read on every use: tests wrap or swap bindings on a live instance. */
  bindings: () => Bindings,
  scheduleAlarm: (atMs: number) => Promise<void>,
  /** The bucket when it can take a lifecycle removal now (live, not frozen, not being created). */
  liveBucket: () => BucketRow | null,
  /** This object's bucket name, and writes into its own bucket (the `$system` usage report). */
  own: { name: () => string | undefined; write: (items: StagedItem[]) => Promise<ItemOutcome[]> },
): ObjectParts {
  const now = () => Date.now();
  const tables = openTables(storage.sql);
  const frozen = () => isFrozen(tables);
  const index = new RecordIndex(tables);
  const queries = new QueryEngine(tables, index);
  const usage = new UsageFlush({ tables, db: () => bindings().DB, now, scheduleAlarm });
  const config = () => configFromEnv(bindings());
  const systemStub = () => bucketObject(bindings(), SYSTEM_BUCKET) as unknown as UsageReportArm;
  const traffic = new UsageTraffic({
    storage,
    tables,
    db: () => bindings().DB,
    config,
    now,
    scheduleAlarm,
    armReport: (windowEndMs) => systemStub().armUsageReport(windowEndMs),
  });
  const usageReport = new UsageReport({
    db: () => bindings().DB,
    config,
    now,
    isSystem: () => own.name() === SYSTEM_BUCKET,
    scheduleAlarm,
    write: own.write,
  });
  const sealing = new Sealing({ storage, tables, index, records: bindings, now, frozen });
  const garbage = new Garbage({ tables, records: bindings, usage, now });
  const sourceOf = (name: string) => bucketObject(bindings(), name) as unknown as RenameSource;
  const handOver = async (bucket: string, policies: PolicySet) => {
    const other = bucketObject(bindings(), bucket) as unknown as { setLifecycles(policies: PolicySet): Promise<unknown> };
    await other.setLifecycles(policies);
  };
  const lifecycleRename = new LifecycleRenameFollow({ storage, tables, db: () => bindings().DB, handOver, frozen, now });
  const rename = new Rename({
    storage,
    tables,
    usage,
    sourceOf,
    now,
    scheduleAlarm,
    followLifecycles: () => lifecycleRename.run(),
  });
  const lifecycle = new BucketLifecycle({ storage, tables, usage, now, scheduleAlarm });
  const effects = new WriteEffects({ index, sealing, usage, garbage, scheduleAlarm });
  const reportRun = async (policy: string, run: Record<string, unknown>, gone?: string) => {
    const env = bindings();
    const config = configFromEnv(env);
    const bucket = tables.bucket.get()?.name ?? gone ?? "";
    const entry = `lifecycle/${entrySegment(config.instanceName)}/${entrySegment(policy)}`;
    const message = `Lifecycle '${policy}' processed bucket '${bucket}'`;
    await recordSystemEvent(env, config, entry, "ok", message, { policy, bucket, ...run });
  };
  const removeWindow = windowRemover({ storage, queries, index, liveBucket, afterRemoval: () => effects.afterRemoval(), now });
  const lifecycleRuns = new LifecycleRuns({
    tables,
    db: () => bindings().DB,
    now,
    storage,
    removeWindow,
    firstRecordAt: (spec, from, stop) => queries.firstRecordAt(spec, from, stop),
    reportRun,
  });
  const replications = new Replications({ tables, storage, logSize: () => config().replicationLogSize, now });
  const outbound: { fetch: OutboundFetch } = { fetch: (request) => fetch(request) };
  const replicationSend = new ReplicationSend({
    tables,
    index,
    replications,
    records: bindings,
    fetch: () => outbound.fetch,
    frozen,
    now,
    limits: () => {
      const { batch } = config();
      return { records: batch.maxRecords, bytes: batch.maxBytes };
    },
    report: async (replication, status, message, payload) => {
      const env = bindings();
      const config = configFromEnv(env);
      const entry = `replications/${entrySegment(config.instanceName)}/${entrySegment(replication)}`;
      await recordSystemEvent(env, config, entry, status, message, payload);
    },
  });
  const duties = bucketDuties({
    replicationSend,
    lifecycles: lifecycleRuns,
    lifecycleRename,
    usage,
    traffic,
    usageReport,
    sealing,
    garbage,
    queries,
    index,
    sweepExpiredUploads: () => {
      const bucket = tables.bucket.get();
      if (bucket && !frozen()) storage.transactionSync(() => sweepExpiredUploads({ index, bucket, nowMs: now() }, 1000));
    },
    frozen,
    now,
  });
  return {
    tables,
    index,
    queries,
    usage,
    traffic,
    usageReport,
    sealing,
    garbage,
    rename,
    lifecycle,
    effects,
    lifecycleRuns,
    lifecycleRename,
    replications,
    replicationSend,
    outbound,
    duties,
  };
}
