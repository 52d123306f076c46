/**
 * The only SQL on `bucket`: the one row of the bucket this object holds (settings, rename state,
 * usage versions). Synchronous, so callers compose it inside one `transactionSync`.
 */
import type { BucketSettings, QuotaType } from "../../config";

export interface BucketRow {
  name: string;
  generation: string;
  created_at_ms: number;
  max_block_size: number;
  max_block_records: number;
  quota_type: QuotaType;
  quota_size: number;
  is_provisioned: number;
  pending_bytes: number;
  renaming_to: string | null;
  renaming_from: string | null;
  rename_attempt: string | null;
  renaming_since_ms: number | null;
  rename_finishing: number;
  stats_version: number;
  stats_flushed_version: number;
}

type SelectedBucketRow = Omit<BucketRow, "quota_type"> & { quota_type: string };

const BUCKET_COLUMNS = `name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size,
  is_provisioned, pending_bytes, renaming_to, renaming_from, rename_attempt, renaming_since_ms, rename_finishing,
  stats_version, stats_flushed_version`;

const QUOTA_TYPES: readonly QuotaType[] = ["NONE", "FIFO", "HARD"];

function quotaType(value: string): QuotaType {
  const found = QUOTA_TYPES.find((type) => type === value);
  if (!found) throw new Error(`bucket row has unknown quota type ${value}`);
  return found;
}

export class BucketRowTable {
  constructor(private readonly sql: SqlStorage) {}

  get(): BucketRow | undefined {
    const row = this.sql.exec<SelectedBucketRow>(`SELECT ${BUCKET_COLUMNS} FROM bucket WHERE id = 1`).toArray()[0];
    return row && { ...row, quota_type: quotaType(row.quota_type) };
  }

  /** Id of the bucket's current incarnation ('' while there is none). */
  generation(): string {
    return this.sql.exec<{ generation: string }>("SELECT generation FROM bucket WHERE id = 1").toArray()[0]?.generation ?? "";
  }

  insert(name: string, generation: string, settings: BucketSettings, nowMs: number, provisioned = false): void {
    this.sql.exec(
      `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size, is_provisioned)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`,
      name,
      generation,
      nowMs,
      settings.max_block_size,
      settings.max_block_records,
      settings.quota_type,
      settings.quota_size,
      provisioned ? 1 : 0,
    );
  }

  updateSettings(settings: BucketSettings): void {
    this.sql.exec(
      "UPDATE bucket SET max_block_size = ?, max_block_records = ?, quota_type = ?, quota_size = ? WHERE id = 1",
      settings.max_block_size,
      settings.max_block_records,
      settings.quota_type,
      settings.quota_size,
    );
  }

  /** Settings and the provisioned mark from the environment, over whatever the bucket had. */
  provision(settings: BucketSettings): void {
    this.updateSettings(settings);
    this.sql.exec("UPDATE bucket SET is_provisioned = 1 WHERE id = 1");
    this.touchStats();
  }

  /** The environment no longer provisions the bucket: the API may change and delete it again. */
  unprovision(): void {
    this.sql.exec("UPDATE bucket SET is_provisioned = 0 WHERE id = 1");
    this.touchStats();
  }

  /** Marks usage as changed so the alarm flushes it to D1; the time places the change in a usage window. */
  touchStats(nowMs = Date.now()): void {
    this.sql.exec("UPDATE bucket SET stats_version = stats_version + 1, stats_changed_at_ms = ? WHERE id = 1", nowMs);
  }

  markStatsFlushed(version: number): void {
    this.sql.exec("UPDATE bucket SET stats_flushed_version = max(stats_flushed_version, ?) WHERE id = 1", version);
  }

  /**
   * For the usage windows: the current stats version, the last one a window covered, and when the
   * latest change happened.
   */
  usageVersions(): { stats: number; reported: number; changedAtMs: number } | undefined {
    return this.sql
      .exec<{ stats: number; reported: number; changedAtMs: number }>(
        `SELECT stats_version AS stats, usage_stats_version AS reported, stats_changed_at_ms AS changedAtMs
         FROM bucket WHERE id = 1`,
      )
      .toArray()[0];
  }

  markUsageCovered(version: number): void {
    this.sql.exec("UPDATE bucket SET usage_stats_version = max(usage_stats_version, ?) WHERE id = 1", version);
  }

  lastQueryId(): number {
    return this.sql.exec<{ last_query_id: number }>("SELECT last_query_id FROM bucket WHERE id = 1").one().last_query_id;
  }

  setLastQueryId(id: number): void {
    this.sql.exec("UPDATE bucket SET last_query_id = ? WHERE id = 1", id);
  }

  // ---- rename, target side -----------------------------------------------------------------

  /** The target's placeholder while a rename copies into it: creates under this name get 409. */
  insertRenamePlaceholder(newName: string, oldName: string, nowMs: number): void {
    this.sql.exec(
      `INSERT INTO bucket (id, name, generation, created_at_ms, max_block_size, max_block_records, quota_type, quota_size,
         renaming_from, renaming_since_ms) VALUES (1, ?, '', ?, 0, 0, 'NONE', 0, ?, ?)`,
      newName,
      nowMs,
      oldName,
      nowMs,
    );
  }

  /** Takes over the source's generation and settings under this rename attempt. */
  adoptRenamedSettings(source: BucketRow, attempt: string): void {
    this.sql.exec(
      `UPDATE bucket SET generation = ?, created_at_ms = ?, max_block_size = ?, max_block_records = ?, quota_type = ?,
         quota_size = ?, rename_attempt = ? WHERE id = 1`,
      source.generation,
      source.created_at_ms,
      source.max_block_size,
      source.max_block_records,
      source.quota_type,
      source.quota_size,
      attempt,
    );
  }

  /** From here the copy is never dropped: the source may hand over at any moment. */
  markRenameFinishing(): void {
    this.sql.exec("UPDATE bucket SET rename_finishing = 1 WHERE id = 1");
  }

  /** The copy becomes the live bucket; its usage is flushed under the new name. */
  completeRenameInto(): void {
    this.sql.exec(
      `UPDATE bucket SET renaming_from = NULL, renaming_since_ms = NULL, rename_attempt = NULL, rename_finishing = 0,
         stats_version = stats_version + 1 WHERE id = 1`,
    );
  }

  // ---- rename, source side -----------------------------------------------------------------

  /** Freezes the bucket for a rename attempt. */
  beginRenameOut(newName: string, attempt: string, nowMs: number): void {
    this.sql.exec(
      "UPDATE bucket SET renaming_to = ?, rename_attempt = ?, renaming_since_ms = ? WHERE id = 1",
      newName,
      attempt,
      nowMs,
    );
  }

  /** Both sides note progress, so an active copy is never taken for a stalled one. */
  heartbeatRename(nowMs: number): void {
    this.sql.exec("UPDATE bucket SET renaming_since_ms = ? WHERE id = 1", nowMs);
  }

  /** Thaws a source whose rename was abandoned: its attempt id goes, so the old copy cannot finish. */
  thawRenameOut(): void {
    this.sql.exec("UPDATE bucket SET renaming_to = NULL, rename_attempt = NULL, renaming_since_ms = NULL WHERE id = 1");
  }

  clear(): void {
    this.sql.exec("DELETE FROM bucket");
  }
}
