/**
 * Runs this bucket's lifecycle policies from the alarm. Every `interval` a policy runs: it removes
 * (or, in dry_run, counts) the records matching its entries and `when` from where it stopped up
 * to now − `older_than` (never past the latest record), window after window of at most
 * `processing_interval` of data time, skipping data time without records. A run is one remove
 * query cut into pieces: a pass scans at most LIFECYCLE_SLICE_RECORDS records, and where it
 * stopped, the count so far and each entry's `when` state (`$limit`, `$each_n`, `$each_t`,
 * `$gate`) are persisted with its removal, so a run resumes after eviction, removes nothing
 * twice and selects exactly what one REMOVE query over its range would. A run is reported once,
 * when it ends, as the policy's `last_run` and a `$system` event.
 */
import { clearLifecycleRunning, markLifecycleRunning, recordLifecycleRun } from "../../d1/lifecycles";
import type { ItemOutcome } from "../../model/records";
import { type LifecycleSettings, lifecycleTimes } from "../lifecycle-settings";
import type { QuerySpec } from "../query-batch";
import type { QueryEngine, RemoveCursor } from "../query-engine";
import type { RecordIndex } from "../record-index";
import type { BucketTables } from "../tables";
import type { BucketRow } from "../tables/bucket-row";
import type { LifecyclePolicyRow } from "../tables/lifecycle-policies";
import { transactOutcome } from "../transaction";

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

/** Removes (or only counts) one bounded slice, committing `commit` in the same transaction. */
export type WindowRemover = (
  spec: QuerySpec,
  dryRun: boolean,
  cursor: RemoveCursor | null,
  limit: number,
  states: Map<string, unknown>,
  commit: (outcome: LifecycleSliceOutcome) => void,
) => Promise<LifecycleSliceOutcome | null>;

export interface WindowRemoverDeps {
  storage: DurableObjectStorage;
  queries: QueryEngine;
  index: RecordIndex;
  /** The bucket when it can run a removal now; null when it is gone, frozen or being created. */
  liveBucket: () => BucketRow | null;
  afterRemoval: () => Promise<void>;
  now: () => number;
}

/** The remove-by-query path, one slice at a time; null when the bucket cannot run it now. */
export function windowRemover(deps: WindowRemoverDeps): WindowRemover {
  return async (spec, dryRun, cursor, limit, states, commit) => {
    if (deps.liveBucket() === null) return null;
    if (dryRun) {
      const counted = deps.queries.removeSlice(spec, () => {}, cursor, limit, states);
      const outcome = counted.ok ? { count: counted.removed, next: counted.next } : { count: 0, next: null };
      deps.storage.transactionSync(() => commit(outcome));
      return outcome;
    }
    let sliced: LifecycleSliceOutcome = { count: 0, next: null };
    const nowMs = deps.now();
    const outcome = transactOutcome(deps.storage, (): ItemOutcome => {
      const result = deps.queries.removeSlice(spec, (rows) => deps.index.removeRecords(rows, nowMs), cursor, limit, states);
      if (!result.ok) return result;
      sliced = { count: result.removed, next: result.next };
      commit(sliced);
      return { ok: true };
    });
    if (!outcome.ok) return null;
    await deps.afterRemoval();
    return sliced;
  };
}

export interface LifecycleRunDeps {
  tables: BucketTables;
  db: () => D1Database;
  now: () => number;
  storage: DurableObjectStorage;
  removeWindow: WindowRemover;
  /** The first record at or after `from` and before `stop` in the spec's entries. */
  firstRecordAt: (spec: QuerySpec, from: number, stop: number) => number | null;
  /** Writes a finished run as a `$system` event (after its removal committed); `bucket` once it is gone. */
  reportRun: (policy: string, run: Record<string, unknown>, bucket?: string) => Promise<void>;
}

/** What a run in progress keeps besides its range: the settings it started with, `when` states. */
interface RunState {
  settings: string;
  /** [entry name, evaluator snapshot] pairs (names never become object keys). */
  entries: [string, unknown][];
}

/** The settings a run depends on: a rename (the bucket name) does not change what it selects. */
const runSettings = (settings: LifecycleSettings): string => JSON.stringify({ ...settings, bucket: undefined });

const specOf = (settings: LifecycleSettings, start: number, stop: number): QuerySpec => ({
  kind: "multi",
  entries: settings.entries,
  start,
  stop,
  ttlSeconds: 0,
  continuous: false,
  onlyMetadata: true,
  strict: false,
  when: settings.when ?? null,
});

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
      await this.step(policy);
    }
  }

  /** One pass of one due policy: starts, continues or ends its run by at most one slice. */
  private async step(policy: LifecyclePolicyRow): Promise<void> {
    const { tables, now } = this.deps;
    const policies = tables.lifecyclePolicies;
    const settings = JSON.parse(policy.settings) as LifecycleSettings;
    const times = lifecycleTimes(settings);
    const nextRunAt = now() + times.intervalUs / 1000;
    const dryRun = settings.mode === "dry_run";
    const started = policy.run_from_us !== null;
    const state: RunState | null = policy.run_state === null ? null : (JSON.parse(policy.run_state) as RunState);
    if (started && state?.settings !== runSettings(settings)) {
      // Disabled or changed mid-run: the run ends with what it did; changed settings start over
      // from the run's beginning, which their own run then covers.
      await this.endPartial(policy);
      policies.saveProgress(policy.name, policy.run_from_us as number, now());
      return;
    }
    if (settings.mode === "disabled" || settings.type !== "delete") {
      policies.saveProgress(policy.name, policy.processed_until_us, nextRunAt);
      return;
    }
    let runFrom = policy.run_from_us;
    let runUntil = policy.run_until_us;
    if (runFrom === null || runUntil === null) {
      const cutoffUs = now() * 1000 - times.olderThanUs;
      const latest = this.latestRecord();
      const processed = policy.processed_until_us;
      // Never past the latest record: records written later with older timestamps stay in reach.
      const until = latest === null ? processed : Math.min(cutoffUs, latest + 1);
      const first = until > processed ? this.deps.firstRecordAt(specOf(settings, processed, until), processed, until) : null;
      if (first === null) {
        // Nothing to process is still a run: users see the policy ran and found nothing.
        policies.saveProgress(policy.name, processed, nextRunAt);
        await this.report(policy.name, settings.mode, 0, processed, Math.max(processed, until));
        return;
      }
      runFrom = first;
      runUntil = until;
      policies.startRun(policy.name, runFrom, runUntil, JSON.stringify({ settings: runSettings(settings), entries: [] }));
    }
    const count = started ? policy.window_count : 0;
    const states = new Map<string, unknown>(started ? (state?.entries ?? []) : []);
    let windowFrom = started ? policy.processed_until_us : runFrom;
    let windowUntil = started ? policy.window_until_us : null;
    const cursor =
      windowUntil !== null && policy.cursor_entry !== null && policy.cursor_ts !== null
        ? { entry: policy.cursor_entry, ts: policy.cursor_ts }
        : null;
    if (windowUntil === null) {
      // A new window starts at the next record: data time without any is skipped at once.
      const next = this.deps.firstRecordAt(specOf(settings, windowFrom, runUntil), windowFrom, runUntil);
      if (next === null) {
        await this.finish(policy.name, settings.mode, count, runFrom, runUntil, dryRun ? runFrom : runUntil, nextRunAt);
        return;
      }
      windowFrom = next;
      windowUntil = Math.min(next + times.processingIntervalUs, runUntil);
    }
    const last = windowUntil >= runUntil;
    const runState = () => JSON.stringify({ settings: runSettings(settings), entries: [...states] } satisfies RunState);
    const window = specOf(settings, windowFrom, windowUntil);
    const outcome = await this.deps.removeWindow(window, dryRun, cursor, LIFECYCLE_SLICE_RECORDS, states, (slice) => {
      const total = count + slice.count;
      if (slice.next === null && last) {
        // A dry run keeps its progress: the records are still there for the enabled run.
        policies.saveProgress(policy.name, dryRun ? (runFrom as number) : (runUntil as number), nextRunAt);
      } else if (slice.next === null) {
        // The window is done; the next one runs in the next pass, requests answering in between.
        policies.saveSlice(policy.name, windowUntil as number, null, null, total, runState(), now());
      } else {
        policies.saveSlice(policy.name, windowFrom, windowUntil, slice.next, total, runState(), now());
      }
    });
    if (outcome === null) {
      policies.postpone(policy.name, now() + BLOCKED_RETRY_MS);
    } else if (outcome.next === null && last) {
      await this.report(policy.name, settings.mode, count + outcome.count, runFrom, runUntil);
      return;
    }
    if (!started) await this.bestEffort(() => markLifecycleRunning(this.deps.db(), policy.name));
  }

  /** Ends a run that found no further record and records it. */
  private async finish(
    name: string,
    mode: string,
    count: number,
    from: number,
    until: number,
    processedUntil: number,
    nextRunAt: number,
  ): Promise<void> {
    this.deps.tables.lifecyclePolicies.saveProgress(name, processedUntil, nextRunAt);
    await this.report(name, mode, count, from, until);
  }

  /**
   * A run that ends unfinished (its policy disabled, changed, removed or its bucket deleted):
   * what it removed is reported as a run over the range it got through; one that removed
   * nothing only stops showing as running.
   */
  async endPartial(policy: LifecyclePolicyRow): Promise<void> {
    if (policy.run_from_us === null) return;
    const state = policy.run_state === null ? null : (JSON.parse(policy.run_state) as RunState);
    const mode = state === null ? "enabled" : ((JSON.parse(state.settings) as { mode?: string }).mode ?? "enabled");
    if (policy.window_count === 0) {
      await this.bestEffort(() => clearLifecycleRunning(this.deps.db(), policy.name));
      return;
    }
    const reached = policy.window_until_us ?? policy.processed_until_us;
    const { bucket } = JSON.parse(policy.settings) as LifecycleSettings;
    await this.report(policy.name, mode, policy.window_count, policy.run_from_us, Math.max(policy.run_from_us, reached), bucket);
  }

  /**
   * The policies D1 holds for this bucket (the API hands them over after every change, bucket
   * create and rename into this name). A policy that stays keeps its progress; a run of one that
   * left ends here.
   */
  async receive(
    policies: { name: string; settings: LifecycleSettings }[],
    alsoKeep: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const { storage, tables, now } = this.deps;
    const removed = storage.transactionSync(() =>
      tables.lifecyclePolicies.replaceAll(
        policies.map((policy) => ({ name: policy.name, settings: JSON.stringify(policy.settings) })),
        now(),
        alsoKeep,
      ),
    );
    for (const row of removed) await this.endPartial(row);
  }

  /** Names among `names` whose run is in progress here (the API's `is_running`). */
  running(names: string[]): string[] {
    return this.deps.tables.lifecyclePolicies.running(names);
  }

  /** Records a run in D1 (`last_run`) and `$system`; its removal has committed already. */
  private async report(name: string, mode: string, count: number, from: number, until: number, bucket?: string) {
    const run = { mode, [mode === "dry_run" ? "matched_records" : "removed_records"]: count, from, until };
    await this.bestEffort(() =>
      recordLifecycleRun(this.deps.db(), name, JSON.stringify({ time: new Date(this.deps.now()).toISOString(), ...run })),
    );
    await this.bestEffort(() => this.deps.reportRun(name, run, bucket));
  }

  /** Reporting never undoes nor repeats a committed removal: a failure is logged and dropped. */
  private async bestEffort(report: () => Promise<void>): Promise<void> {
    try {
      await report();
    } catch (error) {
      console.error("lifecycle run report failed:", error);
    }
  }

  private latestRecord(): number | null {
    let latest: number | null = null;
    for (const entry of this.deps.tables.entries.all()) {
      if (entry.latest_record !== null) latest = Math.max(latest ?? entry.latest_record, entry.latest_record);
    }
    return latest;
  }

  nextDueAt(): number | null {
    return this.deps.tables.lifecyclePolicies.nextRunAt();
  }
}
