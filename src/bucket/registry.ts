/**
 * The only code that writes the bucket registry and usage to D1. The bucket object calls
 * `syncRegistry` to make D1's row for its name equal to its own state: an upsert while the bucket
 * exists, a delete once it is gone. Calls are serialised per object so an older sync can never
 * land after a newer one.
 */

export interface RegistryRow {
  name: string;
  generation: string;
  is_provisioned: number;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
}

export async function upsertRegistryRow(db: D1Database, row: RegistryRow, nowMs: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO buckets (name, generation, status, is_provisioned, entry_count, size, oldest_record, latest_record, updated_at_ms)
       VALUES (?1, ?2, 'READY', ?3, ?4, ?5, ?6, ?7, ?8)
       ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, status = excluded.status,
         is_provisioned = excluded.is_provisioned, entry_count = excluded.entry_count, size = excluded.size,
         oldest_record = excluded.oldest_record, latest_record = excluded.latest_record,
         updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(row.name, row.generation, row.is_provisioned, row.entry_count, row.size, row.oldest_record, row.latest_record, nowMs)
    .run();
}

/** Deletes the row only if it still belongs to that generation (a new bucket may own the name). */
export async function deleteRegistryRow(db: D1Database, name: string, generation: string): Promise<void> {
  await db.prepare("DELETE FROM buckets WHERE name = ?1 AND generation = ?2").bind(name, generation).run();
}

/** Removes exact mentions of a deleted bucket from every token's read/write lists. */
export async function forgetBucketInTokens(db: D1Database, name: string): Promise<void> {
  await db
    .prepare(
      `UPDATE tokens SET
         read_buckets = (SELECT json_group_array(value) FROM json_each(tokens.read_buckets) WHERE value <> ?1),
         write_buckets = (SELECT json_group_array(value) FROM json_each(tokens.write_buckets) WHERE value <> ?1)
       WHERE EXISTS (SELECT 1 FROM json_each(tokens.read_buckets) WHERE value = ?1)
          OR EXISTS (SELECT 1 FROM json_each(tokens.write_buckets) WHERE value = ?1)`,
    )
    .bind(name)
    .run();
}

/** Renames exact mentions of a bucket in every token's read/write lists. */
export async function renameBucketInTokens(db: D1Database, oldName: string, newName: string): Promise<void> {
  await db
    .prepare(
      `UPDATE tokens SET
         read_buckets = (SELECT json_group_array(CASE WHEN value = ?1 THEN ?2 ELSE value END) FROM json_each(tokens.read_buckets)),
         write_buckets = (SELECT json_group_array(CASE WHEN value = ?1 THEN ?2 ELSE value END) FROM json_each(tokens.write_buckets))
       WHERE EXISTS (SELECT 1 FROM json_each(tokens.read_buckets) WHERE value = ?1)
          OR EXISTS (SELECT 1 FROM json_each(tokens.write_buckets) WHERE value = ?1)`,
    )
    .bind(oldName, newName)
    .run();
}
