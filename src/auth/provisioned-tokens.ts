/**
 * Tokens provisioned from the environment (parsed by api/token-provisioning.ts), applied to D1 as
 * ReductStore applies them at start:
 *  - a token of that name, provisioned or made through the API, takes the environment's value,
 *    permissions and expiry and becomes provisioned, so the API cannot rotate or delete it (409);
 *  - a provisioned token whose group is gone becomes an ordinary token again (its value keeps
 *    working until someone deletes or rotates it), so it never stays undeletable;
 *  - the init token is left to RS_API_TOKEN.
 *
 * The value is stored as `lookup` and salted `hash` only (secrets.ts), like a generated one, so
 * authentication finds it the same way. Workers start isolates often, so applying is idempotent:
 * a row that already matches is not written, and `created_at` (with `last_access`) restarts only
 * when the value changes, which is what rotating a provisioned token means.
 */
import {
  type ProvisionedTokenRow,
  selectProvisionedNames,
  selectTokenByName,
  type TokenRow,
  unprovisionToken,
  upsertProvisionedToken,
} from "../d1/tokens";
import type { Permissions } from "./policy";
import { hashToken, tokenLookup, verifyTokenHash } from "./secrets";
import { rfc3339Now } from "./time";
import { INIT_TOKEN_NAME } from "./token-store";

export interface ProvisionedToken {
  name: string;
  /** The secret as the operator set it; never stored, never logged. */
  value: string;
  permissions: Permissions;
  /** RFC 3339 as the API shows it, or null. */
  expiresAt: string | null;
}

function logError(msg: string): void {
  console.error(JSON.stringify({ level: "ERROR", msg }));
}

const sameList = (stored: string, wanted: readonly string[]) => stored === JSON.stringify(wanted);

function matches(row: TokenRow, token: ProvisionedToken): boolean {
  return (
    row.is_provisioned === 1 &&
    row.full_access === (token.permissions.full_access ? 1 : 0) &&
    sameList(row.read_buckets, token.permissions.read) &&
    sameList(row.write_buckets, token.permissions.write) &&
    row.expires_at === token.expiresAt &&
    row.ttl === null &&
    row.ip_allowlist === "[]"
  );
}

/** The row `token` should have, given the current one (null: none of that name). */
async function wantedRow(current: TokenRow | null, token: ProvisionedToken, nowMs: number): Promise<ProvisionedTokenRow> {
  const sameValue = current !== null && (await verifyTokenHash(token.value, current.hash));
  return {
    name: token.name,
    lookup: await tokenLookup(token.value),
    hash: sameValue ? current.hash : await hashToken(token.value),
    createdAt: sameValue ? current.created_at : rfc3339Now(nowMs),
    lastAccess: sameValue ? current.last_access : null,
    fullAccess: token.permissions.full_access,
    readBuckets: token.permissions.read,
    writeBuckets: token.permissions.write,
    expiresAt: token.expiresAt,
  };
}

/**
 * Makes D1 match the environment's tokens. A token that cannot be written (its value is another
 * token's) is skipped with an error line; a D1 failure is thrown, so the caller retries. `skipped`
 * names the groups that were invalid: their tokens stay as they are, so a typo in a variable does
 * not turn a provisioned token into a deletable one.
 */
export async function applyProvisionedTokens(
  db: D1Database,
  tokens: readonly ProvisionedToken[],
  skipped: readonly string[] = [],
  nowMs = Date.now(),
): Promise<void> {
  for (const token of tokens) {
    const current = await selectTokenByName(db, token.name);
    const row = await wantedRow(current, token, nowMs);
    if (current && matches(current, token) && row.hash === current.hash && current.lookup === row.lookup) continue;
    try {
      await upsertProvisionedToken(db, row);
    } catch (error) {
      if (!/UNIQUE constraint failed: tokens\.lookup/.test(String(error))) throw error;
      logError(`Failed to provision token '${token.name}': its value is the value of another token`);
    }
  }
  const wanted = new Set([...tokens.map((token) => token.name), ...skipped]);
  for (const name of await selectProvisionedNames(db, INIT_TOKEN_NAME)) {
    if (!wanted.has(name)) await unprovisionToken(db, name);
  }
}
