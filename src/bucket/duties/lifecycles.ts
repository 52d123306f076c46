/**
 * Runs this bucket's lifecycle policies from the alarm. Every `interval` a policy removes (or, in
 * dry_run, counts) the records matching its entries and `when` in the next window of data time:
 * from where it stopped to at most `processing_interval` later, never past now − `older_than`.
 * The window's end is persisted with the removal, so a run resumes after eviction and a backlog
 * advances window by window, one per alarm pass, other duties and requests running in between.
 */
import { recordLifecycleRun } from "../../d1/lifecycles";
import { type LifecycleSettings, lifecycleTimes } from "../lifecycle-settings";
import type { QuerySpec } from "../query-batch";
import type { BucketTables } from "../tables";

/** A bucket frozen for a rename tries its policies again this much later. */
const BLOCKED_RETRY_MS = 60_000;

export interface LifecycleRunDeps {
  tables: BucketTables;
  db: () => D1Database;
  now: () => number;
  /**
   * Removes (or only counts, `dryRun`) what the spec selects, in one transaction with `commit`;
   * null when the bucket cannot run it now (gone, or frozen for a rename).
   */
  removeWindow: (spec: QuerySpec, dryRun: boolean, commit: () => void) => Promise<number | null>;
}

export class LifecycleRuns {
  constructor(private readonly deps: LifecycleRunDeps) {}

  async run(deadline: number): Promise<void> {
    const { tables, now } = this.deps;
    for (const policy of tables.lifecyclePolicies.all()) {
      if (now() >= deadline) return;
      if (policy.next_run_at_ms > now()) continue;
      const settings = JSON.parse(policy.settings) as LifecycleSettings;
      const times = lifecycleTimes(settings);
      const nextRunAt = now() + times.intervalUs / 1000;
      const cutoffUs = now() * 1000 - times.olderThanUs;
      // Data time outside [oldest, latest] holds nothing: a new policy starts at the oldest record,
      // and a window past the latest one ends the backlog instead of stepping to the cutoff.
      const bounds = this.recordBounds();
      const from = Math.max(policy.processed_until_us, bounds?.oldest ?? policy.processed_until_us);
      // Never past the latest record: records written later with older timestamps stay in reach.
      const until = bounds === null ? from : Math.min(from + times.processingIntervalUs, cutoffUs, bounds.latest + 1);
      if (settings.mode === "disabled" || settings.type !== "delete" || until <= from) {
        tables.lifecyclePolicies.saveProgress(policy.name, from, nextRunAt);
        continue;
      }
      const dryRun = settings.mode === "dry_run";
      const spec: QuerySpec = {
        kind: "multi",
        entries: settings.entries,
        start: from,
        stop: until,
        ttlSeconds: 0,
        continuous: false,
        onlyMetadata: true,
        strict: false,
        when: settings.when ?? null,
      };
      // A dry run keeps its window: the records are still there for the enabled run.
      const processedUntil = dryRun ? from : until;
      // A backlog runs its next window at once; a caught-up policy waits for its interval.
      const backlog = bounds !== null && until < cutoffUs && until <= bounds.latest;
      const due = backlog ? now() : nextRunAt;
      const count = await this.deps.removeWindow(spec, dryRun, () =>
        tables.lifecyclePolicies.saveProgress(policy.name, processedUntil, dryRun ? nextRunAt : due),
      );
      if (count === null) {
        tables.lifecyclePolicies.saveProgress(policy.name, from, now() + BLOCKED_RETRY_MS);
        continue;
      }
      const lastRun = {
        time: new Date(now()).toISOString(),
        mode: settings.mode,
        [dryRun ? "matched_records" : "removed_records"]: count,
        from,
        until,
      };
      await recordLifecycleRun(this.deps.db(), policy.name, JSON.stringify(lastRun));
    }
  }

  private recordBounds(): { oldest: number; latest: number } | null {
    let oldest = Number.POSITIVE_INFINITY;
    let latest = Number.NEGATIVE_INFINITY;
    for (const entry of this.deps.tables.entries.all()) {
      if (entry.oldest_record === null || entry.latest_record === null) continue;
      oldest = Math.min(oldest, entry.oldest_record);
      latest = Math.max(latest, entry.latest_record);
    }
    return Number.isFinite(oldest) ? { oldest, latest } : null;
  }

  nextDueAt(): number | null {
    return this.deps.tables.lifecyclePolicies.nextRunAt();
  }
}
