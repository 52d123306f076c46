/**
 * Runs this bucket's lifecycle policies from the alarm. Every `interval` a policy removes (or, in
 * dry_run, counts) the records matching its entries and `when` in the next window of data time:
 * from where it stopped to at most `processing_interval` later, never past now − `older_than`.
 * A pass scans at most LIFECYCLE_SLICE_RECORDS records; where it stopped inside the window is
 * persisted with its removal, so a dense window finishes over several passes, a run resumes after
 * eviction, nothing is removed twice, and other duties and requests run in between. A finished
 * window is recorded as the policy's `last_run` and as a `$system` event.
 */
import { markLifecycleRunning, recordLifecycleRun } from "../../d1/lifecycles";
import { type LifecycleSettings, lifecycleTimes } from "../lifecycle-settings";
import type { QuerySpec } from "../query-batch";
import type { RemoveCursor } from "../query-engine";
import type { BucketTables } from "../tables";

/** A bucket frozen for a rename tries its policies again this much later. */
const BLOCKED_RETRY_MS = 60_000;

/** A policy whose run threw (bad stored settings, a fault) is tried again this much later. */
const FAILED_RETRY_MS = 60_000;

/** Records one alarm pass scans at most: a dense window finishes over several passes. */
export const LIFECYCLE_SLICE_RECORDS = 1000;

export interface LifecycleSliceOutcome {
  /** Records this slice removed (or only counted). */
  count: number;
  /** Where the window's next slice starts; null when the window is done. */
  next: RemoveCursor | null;
}

export interface LifecycleRunDeps {
  tables: BucketTables;
  db: () => D1Database;
  now: () => number;
  /**
   * Removes (or only counts, `dryRun`) one bounded slice of what the spec selects from `cursor`,
   * in one transaction with `commit`; null when the bucket cannot run it now (gone, or frozen).
   */
  removeWindow: (
    spec: QuerySpec,
    dryRun: boolean,
    cursor: RemoveCursor | null,
    limit: number,
    commit: (outcome: LifecycleSliceOutcome) => void,
  ) => Promise<LifecycleSliceOutcome | null>;
  /** Writes a finished window as a `$system` event (after its removal committed). */
  reportRun: (policy: string, run: Record<string, unknown>) => Promise<void>;
}

export class LifecycleRuns {
  /** The policy the pass is running, so a failure is charged to it alone. */
  private current: string | null = null;

  constructor(private readonly deps: LifecycleRunDeps) {}

  /**
   * Runs the due policies. One that throws is set aside for FAILED_RETRY_MS and the pass goes on
   * with the others; otherwise the first policy's failure would fail every pass and starve them all.
   */
  async run(deadline: number): Promise<void> {
    for (;;) {
      this.current = null;
      try {
        await this.runDue(deadline);
        return;
      } catch (error) {
        const failed = this.current;
        if (failed === null) throw error;
        console.error(
          JSON.stringify({ level: "ERROR", msg: `Lifecycle '${failed}' failed; next try in 60 s: ${String(error)}` }),
        );
        this.deps.tables.lifecyclePolicies.postpone(failed, this.deps.now() + FAILED_RETRY_MS);
      }
    }
  }

  private async runDue(deadline: number): Promise<void> {
    const { tables, now } = this.deps;
    for (const policy of tables.lifecyclePolicies.all()) {
      if (now() >= deadline) return;
      if (policy.next_run_at_ms > now()) continue;
      this.current = policy.name;
      const settings = JSON.parse(policy.settings) as LifecycleSettings;
      const times = lifecycleTimes(settings);
      const nextRunAt = now() + times.intervalUs / 1000;
      const cutoffUs = now() * 1000 - times.olderThanUs;
      const bounds = this.recordBounds();
      const unfinished = policy.window_until_us !== null;
      let from: number;
      let until: number;
      if (unfinished) {
        // An unfinished window keeps its bounds until its last slice.
        from = policy.processed_until_us;
        until = policy.window_until_us as number;
      } else {
        // Data time outside [oldest, latest] holds nothing: a new policy starts at the oldest record,
        // and a window past the latest one ends the backlog instead of stepping to the cutoff.
        from = Math.max(policy.processed_until_us, bounds?.oldest ?? policy.processed_until_us);
        // Never past the latest record: records written later with older timestamps stay in reach.
        until = bounds === null ? from : Math.min(from + times.processingIntervalUs, cutoffUs, bounds.latest + 1);
      }
      if (settings.mode === "disabled" || settings.type !== "delete") {
        tables.lifecyclePolicies.saveProgress(policy.name, from, nextRunAt);
        continue;
      }
      const dryRun = settings.mode === "dry_run";
      if (until <= from) {
        // Nothing to process is still a run: users see the policy ran and found nothing.
        tables.lifecyclePolicies.saveProgress(policy.name, from, nextRunAt);
        await this.finish(policy.name, settings.mode, dryRun, 0, from, until);
        continue;
      }
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
      const cursor =
        unfinished && policy.cursor_entry !== null && policy.cursor_ts !== null
          ? { entry: policy.cursor_entry, ts: policy.cursor_ts }
          : null;
      const total = policy.window_count;
      const outcome = await this.deps.removeWindow(spec, dryRun, cursor, LIFECYCLE_SLICE_RECORDS, (slice) => {
        if (slice.next === null) {
          tables.lifecyclePolicies.saveProgress(policy.name, processedUntil, dryRun ? nextRunAt : due);
        } else {
          // The rest of the window runs in the next alarm pass, requests answering in between.
          tables.lifecyclePolicies.saveSlice(policy.name, from, until, slice.next, total + slice.count, now());
        }
      });
      if (outcome === null) {
        if (unfinished) {
          tables.lifecyclePolicies.saveSlice(
            policy.name,
            from,
            until,
            cursor ?? { entry: "", ts: from },
            total,
            now() + BLOCKED_RETRY_MS,
          );
        } else {
          tables.lifecyclePolicies.saveProgress(policy.name, from, now() + BLOCKED_RETRY_MS);
        }
        continue;
      }
      if (outcome.next !== null) {
        if (!unfinished) await this.bestEffort(() => markLifecycleRunning(this.deps.db(), policy.name));
        continue;
      }
      await this.finish(policy.name, settings.mode, dryRun, total + outcome.count, from, until);
    }
  }

  /** Records a finished window in D1 (`last_run`) and `$system`; the removal has committed already. */
  private async finish(name: string, mode: string, dryRun: boolean, count: number, from: number, until: number) {
    const run = { mode, [dryRun ? "matched_records" : "removed_records"]: count, from, until };
    await this.bestEffort(() =>
      recordLifecycleRun(this.deps.db(), name, JSON.stringify({ time: new Date(this.deps.now()).toISOString(), ...run })),
    );
    await this.bestEffort(() => this.deps.reportRun(name, run));
  }

  /** Reporting never undoes nor repeats a committed removal: a failure is logged and dropped. */
  private async bestEffort(report: () => Promise<void>): Promise<void> {
    try {
      await report();
    } catch (error) {
      console.error("lifecycle run report failed:", error);
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
