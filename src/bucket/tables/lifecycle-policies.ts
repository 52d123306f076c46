/** The only SQL on `lifecycle_policies`: this bucket's lifecycle policies and each one's progress. */

export interface LifecyclePolicyRow {
  name: string;
  settings: string;
  next_run_at_ms: number;
  /** Records before this timestamp (µs) have been processed. */
  processed_until_us: number;
}

export class LifecyclePoliciesTable {
  constructor(private readonly sql: SqlStorage) {}

  all(): LifecyclePolicyRow[] {
    return this.sql
      .exec<Record<string, SqlStorageValue>>("SELECT * FROM lifecycle_policies ORDER BY name")
      .toArray() as unknown as LifecyclePolicyRow[];
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

  saveProgress(name: string, processedUntilUs: number, nextRunAtMs: number): void {
    this.sql.exec(
      "UPDATE lifecycle_policies SET processed_until_us = ?, next_run_at_ms = ? WHERE name = ?",
      processedUntilUs,
      nextRunAtMs,
      name,
    );
  }

  nextRunAt(): number | null {
    const row = this.sql.exec<{ at: number | null }>("SELECT min(next_run_at_ms) AS at FROM lifecycle_policies").one();
    return row.at;
  }

  clear(): void {
    this.sql.exec("DELETE FROM lifecycle_policies");
  }
}
