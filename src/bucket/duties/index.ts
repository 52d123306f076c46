/** The alarm's duties of one bucket object, in the order each run does them. */
import type { QueryEngine } from "../query-engine";
import type { RecordIndex } from "../record-index";
import type { Garbage } from "./garbage";
import type { LifecycleRenameFollow } from "./lifecycle-rename";
import type { LifecycleRuns } from "./lifecycles";
import type { MaintenanceDuty } from "./maintenance";
import type { ReplicationSend } from "./replication-send";
import type { Sealing } from "./sealing";
import type { UsageFlush } from "./usage-flush";
import type { UsageReport } from "./usage-report";
import type { UsageTraffic } from "./usage-traffic";

export interface DutyDeps {
  usage: UsageFlush;
  traffic: UsageTraffic;
  usageReport: UsageReport;
  sealing: Sealing;
  garbage: Garbage;
  queries: QueryEngine;
  lifecycles: LifecycleRuns;
  lifecycleRename: LifecycleRenameFollow;
  replicationSend: ReplicationSend;
  index: RecordIndex;
  /** Releases uploads whose lease ran out, unless the bucket is gone or frozen for a rename. */
  sweepExpiredUploads: () => void;
  frozen: () => boolean;
  now: () => number;
}

export function bucketDuties(deps: DutyDeps): MaintenanceDuty[] {
  const { usage, sealing, garbage, queries, index } = deps;
  return [
    { name: "usage", run: () => usage.flushIfDirty(), nextDueAt: () => usage.nextDueAt() },
    // Windows go to D1 after the registry row, so the report finds the bucket's storage there; both
    // before the lifecycle slice, whose "again at once" alarm must not fire while they await D1.
    { name: "usage windows", run: () => deps.traffic.run(), nextDueAt: () => deps.traffic.nextDueAt() },
    { name: "usage report", run: (deadline) => deps.usageReport.run(deadline), nextDueAt: () => deps.usageReport.nextDueAt() },
    { name: "sealing", run: (deadline) => sealing.run(deadline), nextDueAt: () => sealing.nextDueAt() },
    {
      name: "uploads",
      run: async () => deps.sweepExpiredUploads(),
      // While frozen, sealing's recheck brings the alarm back.
      nextDueAt: () => (deps.frozen() ? null : index.nextLeaseExpiry()),
    },
    { name: "queries", run: async () => queries.sweepExpired(deps.now()), nextDueAt: () => queries.nextExpiry() },
    { name: "purges", run: (deadline) => garbage.purgeDeletedGenerations(deadline), nextDueAt: () => garbage.nextPurgeAt() },
    { name: "garbage", run: (deadline) => garbage.deleteDue(deadline), nextDueAt: () => garbage.nextGarbageAt() },
    {
      name: "lifecycle rename",
      run: () => deps.lifecycleRename.run(),
      nextDueAt: () => deps.lifecycleRename.nextDueAt(),
    },
    { name: "lifecycles", run: (deadline) => deps.lifecycles.run(deadline), nextDueAt: () => deps.lifecycles.nextDueAt() },
    // Last before the final flush: it may spend the rest of the budget; what is left goes next alarm.
    {
      name: "replication",
      run: (deadline) => deps.replicationSend.run(deadline),
      nextDueAt: () => deps.replicationSend.nextDueAt(),
    },
    { name: "usage (final)", run: () => usage.flushIfDirty(), nextDueAt: () => null },
  ];
}
