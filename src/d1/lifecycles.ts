/**
 * The only SQL on D1's `lifecycles` table: the lifecycle policies of every bucket, their settings
 * as the JSON the API returns, whether provisioning owns them, and the outcome of the last run.
 */

export interface LifecycleRow {
  name: string;
  bucket: string;
  settings: string;
  is_provisioned: number;
  last_run: string | null;
}

const LIFECYCLE_COLUMNS = "name, bucket, settings, is_provisioned, last_run";

export async function listLifecycleRows(db: D1Database): Promise<LifecycleRow[]> {
  const { results } = await db.prepare(`SELECT ${LIFECYCLE_COLUMNS} FROM lifecycles ORDER BY name`).all<LifecycleRow>();
  return results;
}

export async function lifecycleRowsOfBucket(db: D1Database, bucket: string): Promise<LifecycleRow[]> {
  const { results } = await db
    .prepare(`SELECT ${LIFECYCLE_COLUMNS} FROM lifecycles WHERE bucket = ?1 ORDER BY name`)
    .bind(bucket)
    .all<LifecycleRow>();
  return results;
}

export async function getLifecycleRow(db: D1Database, name: string): Promise<LifecycleRow | null> {
  return db.prepare(`SELECT ${LIFECYCLE_COLUMNS} FROM lifecycles WHERE name = ?1`).bind(name).first<LifecycleRow>();
}

/** Inserts a new policy; false when the name is taken (one statement, so two creates cannot both win). */
export async function insertLifecycleRow(db: D1Database, row: Omit<LifecycleRow, "last_run">): Promise<boolean> {
  const result = await db
    .prepare(
      `INSERT INTO lifecycles (name, bucket, settings, is_provisioned) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (name) DO NOTHING`,
    )
    .bind(row.name, row.bucket, row.settings, row.is_provisioned)
    .run();
  return result.meta.changes > 0;
}

/** Replaces the settings of a policy that is not provisioned; false when there is no such row. */
export async function updateLifecycleSettings(db: D1Database, name: string, bucket: string, settings: string): Promise<boolean> {
  const result = await db
    .prepare("UPDATE lifecycles SET bucket = ?2, settings = ?3 WHERE name = ?1 AND is_provisioned = 0")
    .bind(name, bucket, settings)
    .run();
  return result.meta.changes > 0;
}

/**
 * Moves a policy to its bucket's new name after a rename; false when the row no longer names the
 * old bucket (moved, deleted or renamed already) or provisioning owns it (the variables name its
 * bucket).
 */
export async function moveLifecycleToBucket(
  db: D1Database,
  name: string,
  fromBucket: string,
  toBucket: string,
  settings: string,
): Promise<boolean> {
  const result = await db
    .prepare("UPDATE lifecycles SET bucket = ?3, settings = ?4 WHERE name = ?1 AND bucket = ?2 AND is_provisioned = 0")
    .bind(name, fromBucket, toBucket, settings)
    .run();
  return result.meta.changes > 0;
}

/** Provisioning owns the row while its variables are set: it is written as they say. */
export async function upsertProvisionedLifecycle(
  db: D1Database,
  row: Omit<LifecycleRow, "last_run" | "is_provisioned">,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO lifecycles (name, bucket, settings, is_provisioned) VALUES (?1, ?2, ?3, 1)
       ON CONFLICT (name) DO UPDATE SET bucket = excluded.bucket, settings = excluded.settings, is_provisioned = 1`,
    )
    .bind(row.name, row.bucket, row.settings)
    .run();
}

/**
 * Only the current variables make a policy provisioned: the rows of groups no longer set become
 * ordinary policies (their settings stay), which the API may change and delete.
 */
export async function releaseProvisionedLifecycles(db: D1Database, provisioned: string[]): Promise<void> {
  await db
    .prepare(
      `UPDATE lifecycles SET is_provisioned = 0
       WHERE is_provisioned = 1 AND name NOT IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(provisioned))
    .run();
}

export async function deleteLifecycleRow(db: D1Database, name: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM lifecycles WHERE name = ?1 AND is_provisioned = 0").bind(name).run();
  return result.meta.changes > 0;
}

export async function recordLifecycleRun(db: D1Database, name: string, lastRun: string): Promise<void> {
  await db.prepare("UPDATE lifecycles SET last_run = ?2 WHERE name = ?1").bind(name, lastRun).run();
}

/** Marks a policy's window unfinished (its API `is_running`); the finished run's record replaces it. */
export async function markLifecycleRunning(db: D1Database, name: string): Promise<void> {
  await db
    .prepare("UPDATE lifecycles SET last_run = json_set(COALESCE(last_run, '{}'), '$.running', json('true')) WHERE name = ?1")
    .bind(name)
    .run();
}

/** A run ended without removing anything: the policy no longer shows as running. */
export async function clearLifecycleRunning(db: D1Database, name: string): Promise<void> {
  await db
    .prepare(
      `UPDATE lifecycles SET last_run = CASE WHEN json_remove(last_run, '$.running') = '{}' THEN NULL
         ELSE json_remove(last_run, '$.running') END WHERE name = ?1 AND last_run IS NOT NULL`,
    )
    .bind(name)
    .run();
}
