/**
 * API tokens in D1 (table `tokens`, migrations/0001_init.sql). Rows never hold a token value: see
 * secrets.ts for `lookup` and `hash`. Values are returned only by create and rotate.
 *
 * Nothing about token validity is cached between requests: every request with a stored token
 * reads its row, so rotation and deletion take effect on the next request in every isolate.
 *
 * The init token (`init-token`, value = RS_API_TOKEN) is authenticated against the environment,
 * never against D1. So that list/get can show it with a stable `created_at`, it also has a row:
 * `is_provisioned = 1`, `lookup = NULL` (never found by value) and `hash` = salted hash of the env
 * value. The row is written the first time it is needed; `created_at` is the time the current env
 * value was first seen, and is reset when RS_API_TOKEN changes (the hash no longer verifies),
 * which is what rotating the secret means.
 *
 * Tokens from RS_TOKEN_<ID>_* are rows like generated ones (a lookup and a hash of the operator's
 * value) with `is_provisioned = 1`, so rotate and delete refuse them; provisioned-tokens.ts writes them.
 *
 * `last_access` (TTL = seconds of inactivity): written on successful authentication with a
 * stored token, at most once per `lastAccessInterval` per token to keep D1 writes low — once a
 * minute, or every tenth of the TTL when that is shorter. A TTL token can therefore be seen as idle
 * up to 10% of its TTL earlier than exact bookkeeping would (never later). The init token's
 * `last_access` is not tracked (null), so authenticating with it never writes to D1.
 */
import { recordSeed, wasSeeded } from "../d1/init-token-seeds";
import {
  deleteProvisionedToken,
  deleteUnlessLastFullAccess,
  insertProvisioned,
  insertToken,
  selectAllTokens,
  selectTokenByLookup,
  selectTokenByName,
  type TokenRow,
  takeOverAsProvisioned,
  updateLastAccess,
  updateSecret,
} from "../d1/tokens";
import { conflict, notFound, unauthorized, unprocessable } from "../errors";
import { clientIp, ipAllowed } from "./ip";
import type { Permissions, TokenView } from "./policy";
import { generateTokenValue, hashToken, tokenLookup, verifyTokenHash } from "./secrets";
import { rfc3339Ms, rfc3339Now } from "./time";
import { assertTokenName, type TokenCreateRequest, validateTokenCreateRequest } from "./token-request";

export type { TokenRow };
export { clientIp };

export const INIT_TOKEN_NAME = "init-token";

/** What the auth middleware knows about the request besides the bearer value. */
export interface AuthRequest {
  authorization: string | undefined;
  clientIp: string | undefined;
}

const LAST_ACCESS_MAX_INTERVAL_MS = 60_000;

function parseList(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((item): item is string => typeof item === "string") : [];
}

/** Expired by date, or idle for `ttl` seconds since the last access (or creation). Fails closed. */
export function isExpired(row: Pick<TokenRow, "expires_at" | "ttl" | "last_access" | "created_at">, nowMs: number): boolean {
  if (row.expires_at !== null) {
    const expiresMs = rfc3339Ms(row.expires_at);
    if (!(nowMs < expiresMs)) return true;
  }
  if (row.ttl !== null) {
    const sinceMs = rfc3339Ms(row.last_access ?? row.created_at);
    if (!(nowMs - sinceMs < row.ttl * 1000)) return true;
  }
  return false;
}

/** How stale `last_access` may get before authentication writes it again. */
export function lastAccessInterval(ttlSeconds: number | null): number {
  return ttlSeconds === null ? LAST_ACCESS_MAX_INTERVAL_MS : Math.min(LAST_ACCESS_MAX_INTERVAL_MS, ttlSeconds * 100);
}

export function tokenView(row: TokenRow, nowMs = Date.now()): TokenView {
  const permissions: Permissions = {
    full_access: row.full_access === 1,
    read: parseList(row.read_buckets),
    write: parseList(row.write_buckets),
  };
  return {
    name: row.name,
    value: "",
    created_at: row.created_at,
    permissions,
    is_provisioned: row.is_provisioned === 1,
    expires_at: row.expires_at,
    ttl: row.ttl,
    last_access: row.last_access,
    ip_allowlist: parseList(row.ip_allowlist),
    is_expired: isExpired(row, nowMs),
  };
}

export async function getTokenRow(db: D1Database, name: string): Promise<TokenRow | null> {
  return selectTokenByName(db, name);
}

async function requireTokenRow(db: D1Database, name: string): Promise<TokenRow> {
  const row = await getTokenRow(db, name);
  if (!row) throw notFound(`Token '${name}' doesn't exist`);
  return row;
}

/**
 * Finds the stored token with this value and checks it (order: expiry, then IP allowlist).
 * Returns undefined when no stored token has the value. Any value is looked up, not only the
 * `<name>-<32 hex>` shape we generate: a provisioned token's value is the operator's choice, and
 * stays its value after the token is un-provisioned. The row is found by a digest of the value
 * and the secret checked against the salted hash in constant time (secrets.ts).
 */
export async function findStoredToken(db: D1Database, value: string, request: AuthRequest): Promise<TokenView | undefined> {
  const row = await selectTokenByLookup(db, await tokenLookup(value));
  if (!row || !(await verifyTokenHash(value, row.hash))) return undefined;
  return checkedTokenView(db, row, request);
}

/** The stored token `name` if `value` is its current value (checked like findStoredToken). */
export async function findTokenByNameAndValue(
  db: D1Database,
  name: string,
  value: string,
  request: AuthRequest,
): Promise<TokenView | undefined> {
  const row = await selectTokenByName(db, name);
  if (!row || !(await verifyTokenHash(value, row.hash))) return undefined;
  return checkedTokenView(db, row, request);
}

/** Expiry, then IP allowlist; records the access. */
async function checkedTokenView(db: D1Database, row: TokenRow, request: AuthRequest): Promise<TokenView> {
  const now = Date.now();
  if (isExpired(row, now)) throw unauthorized("Token has expired");
  const allowlist = parseList(row.ip_allowlist);
  if (allowlist.length > 0) {
    if (request.clientIp === undefined) throw unauthorized("Client IP is required for this token");
    if (!ipAllowed(allowlist, request.clientIp)) throw unauthorized(`Token is not allowed for client IP ${request.clientIp}`);
  }
  await touchLastAccess(db, row, now);
  return tokenView(row, now);
}

/** Records a use of the token (throttled, see the module comment). Updates `row` in place. */
async function touchLastAccess(db: D1Database, row: TokenRow, nowMs: number): Promise<void> {
  if (row.last_access !== null && nowMs - rfc3339Ms(row.last_access) < lastAccessInterval(row.ttl)) return;
  const stamp = rfc3339Now(nowMs);
  try {
    await updateLastAccess(db, row.name, row.lookup, stamp);
    row.last_access = stamp;
  } catch (error) {
    // Bookkeeping only: a failed write must not fail an authenticated request.
    console.error("could not record token last access:", error);
  }
}

/** Makes the init token's row match RS_API_TOKEN (see the module comment) and returns it. */
export async function ensureInitToken(db: D1Database, initValue: string, nowMs = Date.now()): Promise<TokenRow> {
  const existing = await getTokenRow(db, INIT_TOKEN_NAME);
  if (existing && existing.is_provisioned === 1 && (await verifyTokenHash(initValue, existing.hash))) return existing;
  const createdAt = rfc3339Now(nowMs);
  const hash = await hashToken(initValue);
  if (existing) {
    // The env value changed (or the row is not the provisioned one): take it over and restart its clock.
    await takeOverAsProvisioned(db, INIT_TOKEN_NAME, hash, createdAt, existing.hash);
  } else {
    await insertProvisioned(db, INIT_TOKEN_NAME, hash, createdAt);
  }
  // Concurrent first requests race on the write; everyone returns the row that won.
  const row = await getTokenRow(db, INIT_TOKEN_NAME);
  if (!row) throw new Error("init-token row vanished");
  return row;
}

/**
 * RS_INIT_API_TOKEN: creates `init-token` (full access, not provisioned) with that value once. An
 * existing row (rotated, edited) is left alone, and once a value has created the token, deleting
 * the token sticks: the value does not bring it back while the variable is still set.
 */
export async function createInitialTokenIfMissing(db: D1Database, initValue: string, nowMs = Date.now()): Promise<void> {
  const existing = await getTokenRow(db, INIT_TOKEN_NAME);
  if (existing && existing.is_provisioned === 0) return;
  const lookup = await tokenLookup(initValue);
  if (await wasSeeded(db, lookup)) return;
  // A provisioned row is left over from RS_API_TOKEN, which is no longer set: it no longer applies.
  if (existing) await deleteProvisionedToken(db, INIT_TOKEN_NAME);
  const createdAt = rfc3339Now(nowMs);
  // Concurrent first requests race on the insert; it cannot overwrite, so the first one wins.
  await insertToken(db, {
    name: INIT_TOKEN_NAME,
    lookup,
    hash: await hashToken(initValue),
    createdAt,
    fullAccess: true,
    readBuckets: [],
    writeBuckets: [],
    expiresAt: null,
    ttl: null,
    ipAllowlist: [],
  });
  await recordSeed(db, lookup, createdAt);
}

/** `created_at` of the init token per env value, for /me; valid as long as RS_API_TOKEN is unchanged. */
let initCreatedAt: { value: string; createdAt: string } | undefined;

/** The init token as /me shows it: provisioned, full access, the `created_at` of its row. */
export async function initTokenView(db: D1Database, initValue: string): Promise<TokenView> {
  if (initCreatedAt?.value !== initValue) {
    try {
      const row = await ensureInitToken(db, initValue);
      initCreatedAt = { value: initValue, createdAt: row.created_at };
    } catch (error) {
      // D1 unavailable: the init token still authenticates (it is checked against the env).
      console.error("could not read the init-token row:", error);
      return provisionedFullAccessView(INIT_TOKEN_NAME, rfc3339Now(0));
    }
  }
  return provisionedFullAccessView(INIT_TOKEN_NAME, initCreatedAt.createdAt);
}

export function provisionedFullAccessView(name: string, createdAt: string, provisioned = true): TokenView {
  return {
    name,
    value: "",
    created_at: createdAt,
    permissions: { full_access: true, read: [], write: [] },
    is_provisioned: provisioned,
    expires_at: null,
    ttl: null,
    last_access: null,
    ip_allowlist: [],
    is_expired: false,
  };
}

/** All tokens sorted by name (byte order, like the reference's sorted map), values blank. */
export async function listTokens(db: D1Database, nowMs = Date.now()): Promise<TokenView[]> {
  return (await selectAllTokens(db)).map((row) => tokenView(row, nowMs));
}

export async function getToken(db: D1Database, name: string, nowMs = Date.now()): Promise<TokenView> {
  return tokenView(await requireTokenRow(db, name), nowMs);
}

export interface IssuedToken {
  value: string;
  created_at: string;
}

/** Creates a token: checks in the reference's order, then an insert that cannot overwrite. */
export async function createToken(
  db: D1Database,
  name: string,
  request: TokenCreateRequest,
  nowMs = Date.now(),
): Promise<IssuedToken> {
  assertTokenName(name);
  const alreadyExists = () => conflict(`Token '${name}' already exists`);
  if (await getTokenRow(db, name)) throw alreadyExists();
  validateTokenCreateRequest(request, nowMs);
  const value = generateTokenValue(name);
  const createdAt = rfc3339Now(nowMs);
  const inserted = await insertToken(db, {
    name,
    lookup: await tokenLookup(value),
    hash: await hashToken(value),
    createdAt,
    fullAccess: request.permissions.full_access,
    readBuckets: request.permissions.read,
    writeBuckets: request.permissions.write,
    expiresAt: request.expiresAt?.canonical ?? null,
    ttl: request.ttl,
    ipAllowlist: request.ipAllowlist,
  });
  if (!inserted) throw alreadyExists();
  return { value, created_at: createdAt };
}

/**
 * Deletes a token. Provisioned tokens stay; so does the last full-access token, checked in
 * the same statement as the delete so two concurrent deletes cannot remove the last two.
 */
export async function deleteToken(db: D1Database, name: string): Promise<void> {
  const row = await requireTokenRow(db, name);
  if (row.is_provisioned === 1) throw conflict(`Can't remove provisioned token '${name}'`);
  if (await deleteUnlessLastFullAccess(db, name)) return;
  if (!(await getTokenRow(db, name))) throw notFound(`Token '${name}' doesn't exist`);
  throw conflict(`Can't remove token '${name}': at least one full-access token must remain`);
}

/**
 * Rotates a token: a new value, `created_at` and `last_access` reset to now. The old value
 * stops working with this statement, since authentication always reads the row.
 */
export async function rotateToken(db: D1Database, name: string, nowMs = Date.now()): Promise<IssuedToken> {
  const row = await requireTokenRow(db, name);
  if (row.is_provisioned === 1) throw conflict(`Can't rotate provisioned token '${name}'`);
  // Like the reference, only an expiry date blocks rotation; an idle (TTL) token may be revived.
  if (row.expires_at !== null && !(nowMs < rfc3339Ms(row.expires_at))) {
    throw unprocessable(`Can't rotate expired token '${name}'`);
  }
  const value = generateTokenValue(name);
  const createdAt = rfc3339Now(nowMs);
  const updated = await updateSecret(db, name, await tokenLookup(value), await hashToken(value), createdAt);
  if (!updated) throw notFound(`Token '${name}' doesn't exist`);
  return { value, created_at: createdAt };
}
