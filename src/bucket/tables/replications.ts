/**
 * The only SQL on `replications`: the replications D1 holds with this bucket as source, with the
 * sender's state (backoff, target checked, per-minute diagnostics) and the length of each log.
 */
import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `replications` to the object of the new name. */
export const REPLICATIONS_COPY: TableCopySpec = {
  table: "replications",
  key: ["name"],
  columns: [
    "name",
    "settings",
    "when_state",
    "log_count",
    "backoff_until_ms",
    "backoff_ms",
    "target_checked",
    "target_api",
    "is_active",
    "diagnostics",
    "refusals",
    "epoch",
  ],
};

export type ReplicationRow = {
  name: string;
  /** JSON of ReplicationSettings. */
  settings: string;
  when_state: string | null;
  log_count: number;
  backoff_until_ms: number;
  backoff_ms: number;
  target_checked: number;
  target_api: string | null;
  is_active: number;
  /** JSON list of MinuteFrame. */
  diagnostics: string;
  /** Attempts in a row the target refused for good (refusedForGood). */
  refusals: number;
  /** New with the replication and with every change of its settings: a send started under another is stale. */
  epoch: string;
};

export class ReplicationsTable {
  /**
   * Bumped by every change of the set of replications or their settings (upsert, remove, clear,
   * a rename's copy), so a reader may cache what it derived from them (see Replications.journal).
   */
  private generation = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** Which set of replications a cached derivation belongs to. */
  setGeneration(): number {
    return this.generation;
  }

  /** Rows came in another way (a rename's table copy). */
  touched(): void {
    this.generation++;
  }

  all(): ReplicationRow[] {
    return this.sql.exec<ReplicationRow>("SELECT * FROM replications ORDER BY name").toArray();
  }

  get(name: string): ReplicationRow | undefined {
    return this.sql.exec<ReplicationRow>("SELECT * FROM replications WHERE name = ?", name).toArray()[0];
  }

  /** A new replication, or new settings for one (a new epoch either way): its log and diagnostics stay. */
  upsert(name: string, settings: string, targetChanged: boolean): void {
    this.generation++;
    this.sql.exec(
      `INSERT INTO replications (name, settings, epoch) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, epoch = excluded.epoch,
         target_checked = CASE WHEN ? THEN 0 ELSE target_checked END,
         target_api = CASE WHEN ? THEN NULL ELSE target_api END,
         backoff_until_ms = 0, backoff_ms = 0, refusals = 0`,
      name,
      settings,
      crypto.randomUUID(),
      targetChanged ? 1 : 0,
      targetChanged ? 1 : 0,
    );
  }

  /** A changed `when` starts counting anew. */
  resetWhenState(name: string): void {
    this.sql.exec("UPDATE replications SET when_state = NULL WHERE name = ?", name);
  }

  remove(name: string): void {
    this.generation++;
    this.sql.exec("DELETE FROM replications WHERE name = ?", name);
  }

  saveWhenState(name: string, state: string): void {
    this.sql.exec("UPDATE replications SET when_state = ? WHERE name = ?", state, name);
  }

  addToLog(name: string, delta: number): void {
    this.sql.exec("UPDATE replications SET log_count = max(0, log_count + ?) WHERE name = ?", delta, name);
  }

  /** Counts a refused attempt (or resets the count, `null`); answers the count. */
  countRefusal(name: string, refused: boolean): number {
    return (
      this.sql
        .exec<{ refusals: number }>(
          "UPDATE replications SET refusals = CASE WHEN ? THEN refusals + 1 ELSE 0 END WHERE name = ? RETURNING refusals",
          refused ? 1 : 0,
          name,
        )
        .toArray()[0]?.refusals ?? 0
    );
  }

  /** The target bucket is gone: the next attempt checks (and creates) it again. */
  forgetTarget(name: string): void {
    this.sql.exec("UPDATE replications SET target_checked = 0 WHERE name = ?", name);
  }

  setTarget(name: string, api: string | null): void {
    this.sql.exec("UPDATE replications SET target_checked = 1, target_api = ? WHERE name = ?", api, name);
  }

  /** The outcome of one attempt: whether it reached the target, the backoff it leaves, the diagnostics. */
  recordAttempt(name: string, active: boolean, backoffMs: number, backoffUntilMs: number, diagnostics: string): void {
    this.sql.exec(
      "UPDATE replications SET is_active = ?, backoff_ms = ?, backoff_until_ms = ?, diagnostics = ? WHERE name = ?",
      active ? 1 : 0,
      backoffMs,
      backoffUntilMs,
      diagnostics,
      name,
    );
  }

  saveDiagnostics(name: string, diagnostics: string): void {
    this.sql.exec("UPDATE replications SET diagnostics = ? WHERE name = ?", diagnostics, name);
  }

  clear(): void {
    this.generation++;
    this.sql.exec("DELETE FROM replications");
  }
}
