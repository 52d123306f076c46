/**
 * The only code that runs SQL on D1's `buckets` table (see migrations/): the registry of buckets
 * with their sizes, written by each bucket's object and read by /info and /list without a fan-out
 * to the objects.
 */

export interface RegistryRow {
  name: string;
  generation: string;
  is_provisioned: number;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  record_count: number;
  block_count: number;
}

export async function upsertRegistryRow(db: D1Database, row: RegistryRow, nowMs: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO buckets (name, generation, status, is_provisioned, entry_count, size, oldest_record, latest_record,
         record_count, block_count, updated_at_ms)
       VALUES (?1, ?2, 'READY', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
       ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, status = excluded.status,
         is_provisioned = excluded.is_provisioned, entry_count = excluded.entry_count, size = excluded.size,
         oldest_record = excluded.oldest_record, latest_record = excluded.latest_record,
         record_count = excluded.record_count, block_count = excluded.block_count, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(
      row.name,
      row.generation,
      row.is_provisioned,
      row.entry_count,
      row.size,
      row.oldest_record,
      row.latest_record,
      row.record_count,
      row.block_count,
      nowMs,
    )
    .run();
}

/** Deletes the row only if it still belongs to that generation (a new bucket may own the name). */
export async function deleteRegistryRow(db: D1Database, name: string, generation: string): Promise<void> {
  await db.prepare("DELETE FROM buckets WHERE name = ?1 AND generation = ?2").bind(name, generation).run();
}

export interface RegistryUsage {
  bucket_count: number;
  usage: number;
  oldest_record: number;
  latest_record: number;
}

/** Totals over every bucket: count, bytes, oldest and latest record (0 when none). */
export async function registryUsage(db: D1Database): Promise<RegistryUsage> {
  const usage = await db
    .prepare(
      `SELECT count(*) AS bucket_count, coalesce(sum(size), 0) AS usage,
              coalesce(min(CASE WHEN latest_record > 0 OR oldest_record > 0 THEN oldest_record END), 0) AS oldest_record,
              coalesce(max(latest_record), 0) AS latest_record
       FROM buckets`,
    )
    .first<RegistryUsage>();
  return usage ?? { bucket_count: 0, usage: 0, oldest_record: 0, latest_record: 0 };
}

export interface RegistryListRow {
  name: string;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  is_provisioned: number;
  status: "READY" | "DELETING";
}

/** Every registered bucket in byte order of name (SQLite BINARY). */
export async function listRegistryRows(db: D1Database): Promise<RegistryListRow[]> {
  const { results } = await db
    .prepare("SELECT name, entry_count, size, oldest_record, latest_record, is_provisioned, status FROM buckets ORDER BY name")
    .all<RegistryListRow>();
  return results;
}

/** Buckets clients made (no `$` names) that are marked provisioned. */
export async function provisionedBucketNames(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT name FROM buckets WHERE is_provisioned = 1 AND substr(name, 1, 1) <> '$' ORDER BY name")
    .all<{ name: string }>();
  return results.map((row) => row.name);
}

export interface RegistrySnapshotRow {
  name: string;
  size: number;
  entry_count: number;
  block_count: number;
  record_count: number;
}

/** What a usage record reports of each bucket's storage, for the buckets clients made (no `$` names). */
export async function registrySnapshot(db: D1Database): Promise<RegistrySnapshotRow[]> {
  const { results } = await db
    .prepare(
      "SELECT name, size, entry_count, block_count, record_count FROM buckets WHERE substr(name, 1, 1) <> '$' ORDER BY name",
    )
    .all<RegistrySnapshotRow>();
  return results;
}

/** A cheap query that only shows D1 answers. */
export async function pingDatabase(db: D1Database): Promise<void> {
  await db.prepare("SELECT 1").first();
}
