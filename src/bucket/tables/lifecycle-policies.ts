/** The only SQL on `lifecycle_policies`: this bucket's lifecycle policies and each one's progress. */

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
  /** Records the finished slices of the unfinished window removed (or counted). */
  window_count: number;
};

export class LifecyclePoliciesTable {
  constructor(private readonly sql: SqlStorage) {}

  all(): LifecyclePolicyRow[] {
    return this.sql
      .exec<LifecyclePolicyRow>(
        `SELECT name, settings, next_run_at_ms, processed_until_us, window_until_us, cursor_entry, cursor_ts, window_count
         FROM lifecycle_policies ORDER BY name`,
      )
      .toArray();
  }

  /** Replaces the set; a policy that stays keeps its progress and schedule unless its settings changed. */
  replaceAll(policies: { name: string; settings: string }[], nowMs: number): void {
    const keep = new Set(policies.map((policy) => policy.name));
    for (const row of this.all()) {
      if (!keep.has(row.name)) this.sql.exec("DELETE FROM lifecycle_policies WHERE name = ?", row.name);
    }
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
  }

  /** A finished window (or none run): the next one starts at `processedUntilUs`. */
  saveProgress(name: string, processedUntilUs: number, nextRunAtMs: number): void {
    this.sql.exec(
      `UPDATE lifecycle_policies SET processed_until_us = ?, next_run_at_ms = ?,
         window_until_us = NULL, cursor_entry = NULL, cursor_ts = NULL, window_count = 0 WHERE name = ?`,
      processedUntilUs,
      nextRunAtMs,
      name,
    );
  }

  /** A slice of the window [processedUntilUs, windowUntilUs) is done; the next starts at the cursor. */
  saveSlice(
    name: string,
    processedUntilUs: number,
    windowUntilUs: number,
    cursor: { entry: string; ts: number },
    windowCount: number,
    nextRunAtMs: number,
  ): void {
    this.sql.exec(
      `UPDATE lifecycle_policies SET processed_until_us = ?, window_until_us = ?, cursor_entry = ?,
         cursor_ts = ?, window_count = ?, next_run_at_ms = ? WHERE name = ?`,
      processedUntilUs,
      windowUntilUs,
      cursor.entry,
      cursor.ts,
      windowCount,
      nextRunAtMs,
      name,
    );
  }

  /** Moves only the next run; the progress and an unfinished window stay as they are. */
  postpone(name: string, nextRunAtMs: number): void {
    this.sql.exec("UPDATE lifecycle_policies SET next_run_at_ms = ? WHERE name = ?", nextRunAtMs, name);
  }

  nextRunAt(): number | null {
    const row = this.sql.exec<{ at: number | null }>("SELECT min(next_run_at_ms) AS at FROM lifecycle_policies").one();
    return row.at;
  }

  clear(): void {
    this.sql.exec("DELETE FROM lifecycle_policies");
  }
}
