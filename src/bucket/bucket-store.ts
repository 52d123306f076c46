/**
 * Typed SQL over the bucket object's settings and entry tables. Pure synchronous SQLite calls, so a
 * caller can compose them inside one `transactionSync`.
 */
import type { BucketSettings, QuotaType } from "../config";
import type { ErrorInfo } from "../errors";

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

export interface EntryRow {
  id: number;
  name: string;
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number | null;
  latest_record: number | null;
}

/** Entry info as §3.4 returns it (exactly these 7 keys). */
export interface EntryInfo {
  name: string;
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number;
  latest_record: number;
  status: "READY" | "DELETING";
}

/** Bucket info as §2.2 returns it (exactly these 7 keys). */
export interface BucketInfo {
  name: string;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  is_provisioned: boolean;
  status: "READY" | "DELETING";
}

/** `$meta` entries hold attachments: hidden from lists and counts, but their bytes count in size. */
export function isMetaEntry(name: string): boolean {
  return name === "$meta" || name.endsWith("/$meta");
}

/**
 * A rename keeps an entry's kind: attachments move only with their parent, and a plain entry never
 * becomes attachments (it would vanish from listings, removals and FIFO eviction). Null when allowed.
 */
export function renameKindError(entryName: string, newName: string): ErrorInfo | null {
  if (isMetaEntry(entryName)) {
    return { status: 409, message: `System entry '${entryName}' can be renamed only with its parent entry` };
  }
  if (isMetaEntry(newName)) return { status: 422, message: `Entry '${entryName}' can't be renamed to system entry '${newName}'` };
  return null;
}

export class BucketStore {
  constructor(private readonly sql: SqlStorage) {}

  bucket(): BucketRow | undefined {
    return this.sql.exec<BucketRow & Record<string, SqlStorageValue>>("SELECT * FROM bucket WHERE id = 1").toArray()[0];
  }

  insertBucket(name: string, generation: string, settings: BucketSettings, nowMs: number, provisioned = false): void {
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

  /** Marks usage as changed so the alarm flushes it to D1. */
  touchStats(): void {
    this.sql.exec("UPDATE bucket SET stats_version = stats_version + 1 WHERE id = 1");
  }

  markStatsFlushed(version: number): void {
    this.sql.exec("UPDATE bucket SET stats_flushed_version = max(stats_flushed_version, ?) WHERE id = 1", version);
  }

  entries(): EntryRow[] {
    return this.sql.exec<EntryRow & Record<string, SqlStorageValue>>("SELECT * FROM entries ORDER BY name").toArray();
  }

  entry(name: string): EntryRow | undefined {
    return this.sql.exec<EntryRow & Record<string, SqlStorageValue>>("SELECT * FROM entries WHERE name = ?", name).toArray()[0];
  }

  /**
   * Removes every entry, block, record chunk, upload in flight and query (bucket deletion or rename
   * away). r2_garbage stays: it holds intents of puts still in flight, which must be deleted once they land.
   */
  clearData(): void {
    for (const table of ["entries", "blocks", "record_chunks", "pending_records", "queries"]) {
      this.sql.exec(`DELETE FROM ${table}`);
    }
    this.sql.exec("DELETE FROM bucket");
  }

  /**
   * Queues removal of a generation's D1 registry row under `name` and, unless `purgeObjects` is
   * false (the generation moved to another name by a rename), of its R2 objects.
   */
  queuePurge(name: string, generation: string, nowMs: number, purgeObjects = true): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO r2_purges (generation, name, queued_at_ms, purge_objects) VALUES (?, ?, ?, ?)",
      generation,
      name,
      nowMs,
      purgeObjects ? 1 : 0,
    );
  }

  purges(): { generation: string; name: string; purge_objects: number }[] {
    return this.sql
      .exec<{ generation: string; name: string; purge_objects: number }>(
        "SELECT generation, name, purge_objects FROM r2_purges ORDER BY queued_at_ms",
      )
      .toArray();
  }

  finishPurge(generation: string): void {
    this.sql.exec("DELETE FROM r2_purges WHERE generation = ?", generation);
  }

  settings(row: BucketRow): BucketSettings {
    return {
      max_block_size: row.max_block_size,
      max_block_records: row.max_block_records,
      quota_type: row.quota_type,
      quota_size: row.quota_size,
    };
  }

  entryInfos(): EntryInfo[] {
    return this.entries()
      .filter((entry) => !isMetaEntry(entry.name))
      .map((entry) => ({
        name: entry.name,
        size: entry.size,
        record_count: entry.record_count,
        block_count: entry.block_count,
        oldest_record: entry.oldest_record ?? 0,
        latest_record: entry.latest_record ?? 0,
        status: "READY" as const,
      }));
  }

  /** Bucket usage per §3.4: counts and time bounds over visible entries, size over all entries. */
  bucketInfo(row: BucketRow): BucketInfo {
    const usage = this.sql
      .exec<{ size: number | null; entry_count: number; oldest: number | null; latest: number | null }>(
        `SELECT
           (SELECT sum(size) FROM entries) AS size,
           count(*) AS entry_count,
           min(oldest_record) AS oldest,
           max(latest_record) AS latest
         FROM entries WHERE name <> '$meta' AND name NOT LIKE '%/$meta'`,
      )
      .one();
    return {
      name: row.name,
      entry_count: usage.entry_count,
      size: usage.size ?? 0,
      oldest_record: usage.oldest ?? 0,
      latest_record: usage.latest ?? 0,
      is_provisioned: row.is_provisioned === 1,
      status: "READY",
    };
  }
}
