/** The only SQL on `lifecycle_policies`: this bucket's lifecycle policies and each one's progress. */
import type { TableCopySpec } from "./table-copy";

/**
 * Policies travel with a bucket rename, progress included; their settings still name the old
 * bucket until D1 names the new one (duties/lifecycle-rename.ts).
 */
export const LIFECYCLE_POLICIES_COPY: TableCopySpec = {
  table: "lifecycle_policies",
  key: ["name"],
  columns: [
    "name",
    "settings",
    "next_run_at_ms",
    "processed_until_us",
    "window_until_us",
    "cursor_entry",
    "cursor_ts",
    "window_count",
    "run_from_us",
    "run_until_us",
    "run_state",
  ],
};

export type LifecyclePolicyRow = {
  name: string;
  settings: string;
  next_run_at_ms: number;
  /** Records before this timestamp (µs) have been processed. */
  processed_until_us: number;
  /** Set while a window is unfinished: its end (µs) and where its next slice starts. */
  window_until_us: number | null;
  cursor_entry: string | null;
  cursor_ts: number | null;
  /** Records the finished slices of the run in progress removed (or counted). */
  window_count: number;
  /** Set while a run is in progress: the data time it covers ([from, until)). */
  run_from_us: number | null;
  run_until_us: number | null;
  /** JSON of the run in progress: the settings it started with and each entry's `when` state. */
  run_state: string | null;
};

const COLUMNS =
  "name, settings, next_run_at_ms, processed_until_us, window_until_us, cursor_entry, cursor_ts, window_count, run_from_us, run_until_us, run_state";

export class LifecyclePoliciesTable {
  constructor(private readonly sql: SqlStorage) {}

  all(): LifecyclePolicyRow[] {
    return this.sql.exec<LifecyclePolicyRow>(`SELECT ${COLUMNS} FROM lifecycle_policies ORDER BY name`).toArray();
  }

  /**
   * Replaces the set; a policy that stays keeps its progress and schedule unless its settings
   * changed. Rows named in `alsoKeep` stay even when the new set leaves them out. Returns the rows
   * it removed (a run in progress among them ends here).
   */
  replaceAll(
    policies: { name: string; settings: string }[],
    nowMs: number,
    alsoKeep: ReadonlySet<string> = new Set(),
  ): LifecyclePolicyRow[] {
    const keep = new Set(policies.map((policy) => policy.name));
    const removed = this.all().filter((row) => !keep.has(row.name) && !alsoKeep.has(row.name));
    for (const row of removed) this.sql.exec("DELETE FROM lifecycle_policies WHERE name = ?", row.name);
    for (const policy of policies) {
      this.sql.exec(
        `INSERT INTO lifecycle_policies (name, settings, next_run_at_ms) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET settings = excluded.settings,
           next_run_at_ms = CASE WHEN settings = excluded.settings THEN next_run_at_ms ELSE excluded.next_run_at_ms END`,
        policy.name,
        policy.settings,
        nowMs,
      );
    }
    return removed;
  }

  /** No run in progress (finished, ended or none started): the next one starts at `processedUntilUs`. */
  saveProgress(name: string, processedUntilUs: number, nextRunAtMs: number): void {
    this.sql.exec(
      `UPDATE lifecycle_policies SET processed_until_us = ?, next_run_at_ms = ?, window_until_us = NULL,
         cursor_entry = NULL, cursor_ts = NULL, window_count = 0, run_from_us = NULL, run_until_us = NULL,
         run_state = NULL WHERE name = ?`,
      processedUntilUs,
      nextRunAtMs,
      name,
    );
  }

  /** A run over [fromUs, untilUs) begins; its first window starts at `fromUs`. */
  startRun(name: string, fromUs: number, untilUs: number, state: string): void {
    this.sql.exec(
      `UPDATE lifecycle_policies SET processed_until_us = ?, window_until_us = NULL, cursor_entry = NULL,
         cursor_ts = NULL, window_count = 0, run_from_us = ?, run_until_us = ?, run_state = ? WHERE name = ?`,
      fromUs,
      fromUs,
      untilUs,
      state,
      name,
    );
  }

  /**
   * A slice of the run's window [windowFromUs, windowUntilUs) is done; the next starts at the
   * cursor, or (cursor null) the window is done and the next one starts at `windowFromUs`.
   */
  saveSlice(
    name: string,
    windowFromUs: number,
    windowUntilUs: number | null,
    cursor: { entry: string; ts: number } | null,
    runCount: number,
    state: string,
    nextRunAtMs: number,
  ): void {
    this.sql.exec(
      `UPDATE lifecycle_policies SET processed_until_us = ?, window_until_us = ?, cursor_entry = ?,
         cursor_ts = ?, window_count = ?, run_state = ?, next_run_at_ms = ? WHERE name = ?`,
      windowFromUs,
      cursor === null ? null : windowUntilUs,
      cursor?.entry ?? null,
      cursor?.ts ?? null,
      runCount,
      state,
      nextRunAtMs,
      name,
    );
  }

  /** New settings with the same meaning (the bucket's new name): progress and schedule stay. */
  rewriteSettings(name: string, settings: string): void {
    this.sql.exec("UPDATE lifecycle_policies SET settings = ? WHERE name = ?", settings, name);
  }

  /** A run stopped by a frozen or missing bucket tries again later, where it stopped. */
  postpone(name: string, nextRunAtMs: number): void {
    this.sql.exec("UPDATE lifecycle_policies SET next_run_at_ms = ? WHERE name = ?", nextRunAtMs, name);
  }

  /** Which of these policies have a run in progress here. */
  running(names: string[]): string[] {
    const wanted = new Set(names);
    return this.sql
      .exec<{ name: string }>("SELECT name FROM lifecycle_policies WHERE run_from_us IS NOT NULL ORDER BY name")
      .toArray()
      .map((row) => row.name)
      .filter((name) => wanted.has(name));
  }

  nextRunAt(): number | null {
    const row = this.sql.exec<{ at: number | null }>("SELECT min(next_run_at_ms) AS at FROM lifecycle_policies").one();
    return row.at;
  }

  clear(): void {
    this.sql.exec("DELETE FROM lifecycle_policies");
  }
}
