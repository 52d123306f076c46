/**
 * The only code that runs SQL on D1's `tokens` table (see migrations/). Rows never hold a token
 * value (src/auth/secrets.ts makes `lookup` and `hash`); the rules live in src/auth/token-store.ts.
 */

export interface TokenRow {
  name: string;
  lookup: string | null;
  hash: string;
  created_at: string;
  is_provisioned: number;
  full_access: number;
  read_buckets: string;
  write_buckets: string;
  expires_at: string | null;
  ttl: number | null;
  last_access: string | null;
  ip_allowlist: string;
}

const TOKEN_COLUMNS =
  "name, lookup, hash, created_at, is_provisioned, full_access, read_buckets, write_buckets, expires_at, ttl, last_access, ip_allowlist";

export async function selectTokenByName(db: D1Database, name: string): Promise<TokenRow | null> {
  return db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE name = ?1`).bind(name).first<TokenRow>();
}

export async function selectTokenByLookup(db: D1Database, lookup: string): Promise<TokenRow | null> {
  return db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE lookup = ?1`).bind(lookup).first<TokenRow>();
}

/** All rows in byte order of name. */
export async function selectAllTokens(db: D1Database): Promise<TokenRow[]> {
  const { results } = await db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY name`).all<TokenRow>();
  return results;
}

/** `lookup` guards against a rotation in between; the comparison keeps last_access monotonic. */
export async function updateLastAccess(db: D1Database, name: string, lookup: string | null, stamp: string): Promise<void> {
  await db
    .prepare("UPDATE tokens SET last_access = ?2 WHERE name = ?1 AND lookup = ?3 AND (last_access IS NULL OR last_access < ?2)")
    .bind(name, stamp, lookup)
    .run();
}

/** Makes an existing row (still holding `previousHash`) the provisioned full-access token. */
export async function takeOverAsProvisioned(
  db: D1Database,
  name: string,
  hash: string,
  createdAt: string,
  previousHash: string,
): Promise<void> {
  await db
    .prepare(
      `UPDATE tokens SET lookup = NULL, hash = ?2, created_at = ?3, is_provisioned = 1, full_access = 1,
         read_buckets = '[]', write_buckets = '[]', expires_at = NULL, ttl = NULL, last_access = NULL, ip_allowlist = '[]'
       WHERE name = ?1 AND hash = ?4`,
    )
    .bind(name, hash, createdAt, previousHash)
    .run();
}

/** Inserts a provisioned full-access row unless the name is taken. */
export async function insertProvisioned(db: D1Database, name: string, hash: string, createdAt: string): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tokens (name, lookup, hash, created_at, is_provisioned, full_access)
       VALUES (?1, NULL, ?2, ?3, 1, 1) ON CONFLICT (name) DO NOTHING`,
    )
    .bind(name, hash, createdAt)
    .run();
}

/** Removes a provisioned row (the init-token of an RS_API_TOKEN that is no longer set). */
export async function deleteProvisionedToken(db: D1Database, name: string): Promise<void> {
  await db.prepare("DELETE FROM tokens WHERE name = ?1 AND is_provisioned = 1").bind(name).run();
}

/** A token from the environment's RS_TOKEN_<ID>_* variables, as its row is to be. */
export interface ProvisionedTokenRow {
  name: string;
  lookup: string;
  hash: string;
  createdAt: string;
  lastAccess: string | null;
  fullAccess: boolean;
  readBuckets: readonly string[];
  writeBuckets: readonly string[];
  expiresAt: string | null;
}

/**
 * Writes a provisioned token over whatever row has its name (one made through the API too), as
 * ReductStore overrides it; TTL and IP allowlist are not provisioned, so they are cleared.
 */
export async function upsertProvisionedToken(db: D1Database, row: ProvisionedTokenRow): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tokens (name, lookup, hash, created_at, is_provisioned, full_access, read_buckets, write_buckets,
         expires_at, ttl, last_access, ip_allowlist)
       VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, NULL, ?9, '[]')
       ON CONFLICT (name) DO UPDATE SET lookup = excluded.lookup, hash = excluded.hash, created_at = excluded.created_at,
         is_provisioned = 1, full_access = excluded.full_access, read_buckets = excluded.read_buckets,
         write_buckets = excluded.write_buckets, expires_at = excluded.expires_at, ttl = NULL,
         last_access = excluded.last_access, ip_allowlist = '[]'`,
    )
    .bind(
      row.name,
      row.lookup,
      row.hash,
      row.createdAt,
      row.fullAccess ? 1 : 0,
      JSON.stringify(row.readBuckets),
      JSON.stringify(row.writeBuckets),
      row.expiresAt,
      row.lastAccess,
    )
    .run();
}

/** Names of the provisioned rows other than `except` (the init token, which follows RS_API_TOKEN). */
export async function selectProvisionedNames(db: D1Database, except: string): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT name FROM tokens WHERE is_provisioned = 1 AND name <> ?1 ORDER BY name")
    .bind(except)
    .all<{ name: string }>();
  return results.map((row) => row.name);
}

/** Makes a provisioned row an ordinary token, which the API may then rotate and delete. */
export async function unprovisionToken(db: D1Database, name: string): Promise<void> {
  await db.prepare("UPDATE tokens SET is_provisioned = 0 WHERE name = ?1 AND is_provisioned = 1").bind(name).run();
}

export interface NewTokenRow {
  name: string;
  lookup: string;
  hash: string;
  createdAt: string;
  fullAccess: boolean;
  readBuckets: readonly string[];
  writeBuckets: readonly string[];
  expiresAt: string | null;
  ttl: number | null;
  ipAllowlist: readonly string[];
}

/** Inserts a token that cannot overwrite another; false when the name was taken. */
export async function insertToken(db: D1Database, row: NewTokenRow): Promise<boolean> {
  const result = await db
    .prepare(
      `INSERT INTO tokens (name, lookup, hash, created_at, is_provisioned, full_access, read_buckets, write_buckets,
         expires_at, ttl, last_access, ip_allowlist)
       VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, NULL, ?10) ON CONFLICT (name) DO NOTHING`,
    )
    .bind(
      row.name,
      row.lookup,
      row.hash,
      row.createdAt,
      row.fullAccess ? 1 : 0,
      JSON.stringify(row.readBuckets),
      JSON.stringify(row.writeBuckets),
      row.expiresAt,
      row.ttl,
      JSON.stringify(row.ipAllowlist),
    )
    .run();
  return result.meta.changes === 1;
}

/**
 * Deletes a token that is not provisioned, unless it is the last full-access one: checked in the
 * same statement, so two concurrent deletes cannot remove the last two. True when it was deleted.
 */
export async function deleteUnlessLastFullAccess(db: D1Database, name: string): Promise<boolean> {
  const result = await db
    .prepare(
      `DELETE FROM tokens WHERE name = ?1 AND is_provisioned = 0
         AND (full_access = 0 OR EXISTS (SELECT 1 FROM tokens AS other WHERE other.full_access = 1 AND other.name <> ?1))`,
    )
    .bind(name)
    .run();
  return result.meta.changes === 1;
}

/** A new secret for a token that is not provisioned; `last_access` restarts. True when updated. */
export async function updateSecret(
  db: D1Database,
  name: string,
  lookup: string,
  hash: string,
  createdAt: string,
): Promise<boolean> {
  const result = await db
    .prepare("UPDATE tokens SET lookup = ?2, hash = ?3, created_at = ?4, last_access = ?4 WHERE name = ?1 AND is_provisioned = 0")
    .bind(name, lookup, hash, createdAt)
    .run();
  return result.meta.changes === 1;
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
