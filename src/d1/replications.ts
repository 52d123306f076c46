/**
 * The only SQL on D1's `replications` table: every replication, its settings as JSON (destination
 * token included) and whether provisioning owns it.
 */

export interface ReplicationRow {
  name: string;
  src_bucket: string;
  settings: string;
  is_provisioned: number;
}

const COLUMNS = "name, src_bucket, settings, is_provisioned";

export async function listReplicationRows(db: D1Database): Promise<ReplicationRow[]> {
  const { results } = await db.prepare(`SELECT ${COLUMNS} FROM replications ORDER BY name`).all<ReplicationRow>();
  return results;
}

export async function replicationRowsOfBucket(db: D1Database, srcBucket: string): Promise<ReplicationRow[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM replications WHERE src_bucket = ?1 ORDER BY name`)
    .bind(srcBucket)
    .all<ReplicationRow>();
  return results;
}

export async function getReplicationRow(db: D1Database, name: string): Promise<ReplicationRow | null> {
  return db.prepare(`SELECT ${COLUMNS} FROM replications WHERE name = ?1`).bind(name).first<ReplicationRow>();
}

/** Inserts a new replication; false when the name is taken (one statement, so two creates cannot both win). */
export async function insertReplicationRow(db: D1Database, row: Omit<ReplicationRow, "is_provisioned">): Promise<boolean> {
  const result = await db
    .prepare(
      `INSERT INTO replications (name, src_bucket, settings, is_provisioned) VALUES (?1, ?2, ?3, 0)
       ON CONFLICT (name) DO NOTHING`,
    )
    .bind(row.name, row.src_bucket, row.settings)
    .run();
  return result.meta.changes > 0;
}

/** Replaces the settings of a replication that is not provisioned; false when there is no such row. */
export async function updateReplicationSettings(
  db: D1Database,
  name: string,
  srcBucket: string,
  settings: string,
): Promise<boolean> {
  const result = await db
    .prepare("UPDATE replications SET src_bucket = ?2, settings = ?3 WHERE name = ?1 AND is_provisioned = 0")
    .bind(name, srcBucket, settings)
    .run();
  return result.meta.changes > 0;
}

/** Sets the mode of any replication, provisioned ones too (ReductStore allows that); false when it is gone. */
export async function setReplicationMode(db: D1Database, name: string, mode: string): Promise<boolean> {
  const result = await db
    .prepare("UPDATE replications SET settings = json_set(settings, '$.mode', ?2) WHERE name = ?1")
    .bind(name, mode)
    .run();
  return result.meta.changes > 0;
}

/** Provisioning owns the row while its variables are set: it is written as they say. */
export async function upsertProvisionedReplication(db: D1Database, row: Omit<ReplicationRow, "is_provisioned">): Promise<void> {
  await db
    .prepare(
      `INSERT INTO replications (name, src_bucket, settings, is_provisioned) VALUES (?1, ?2, ?3, 1)
       ON CONFLICT (name) DO UPDATE SET src_bucket = excluded.src_bucket, settings = excluded.settings, is_provisioned = 1`,
    )
    .bind(row.name, row.src_bucket, row.settings)
    .run();
}

/**
 * Only the current variables make a replication provisioned: the rows of groups no longer set
 * become ordinary replications (their settings stay), which the API may change and delete.
 */
export async function releaseProvisionedReplications(db: D1Database, provisioned: string[]): Promise<void> {
  await db
    .prepare(
      `UPDATE replications SET is_provisioned = 0
       WHERE is_provisioned = 1 AND name NOT IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(provisioned))
    .run();
}

export async function deleteReplicationRow(db: D1Database, name: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM replications WHERE name = ?1 AND is_provisioned = 0").bind(name).run();
  return result.meta.changes > 0;
}

/**
 * A bucket rename moves the replications of the old name (not provisioned ones: their source is the
 * environment's) to the new one, settings included, so they keep sending from the renamed bucket.
 */
export async function moveReplicationsToBucket(db: D1Database, from: string, to: string): Promise<void> {
  await db
    .prepare(
      `UPDATE replications SET src_bucket = ?2, settings = json_set(settings, '$.src_bucket', ?2)
       WHERE src_bucket = ?1 AND is_provisioned = 0`,
    )
    .bind(from, to)
    .run();
}
