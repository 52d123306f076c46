/**
 * The body of `POST /tokens/{name}` and the rules a new token must follow.
 *
 * Two shapes are accepted, tried in this order, unknown keys rejected in both (and inside
 * `permissions`, so a typo like `fullaccess` cannot silently create a weaker token):
 *  - v2: `{"permissions": {...}, "expires_at"?: RFC3339|null, "ttl"?: seconds|null, "ip_allowlist"?: [...]}`
 *  - v1: `{"full_access"?: bool, "read"?: [...], "write"?: [...], "ip_allowlist"?: [...]}`
 * Anything else — empty body, invalid JSON, wrong types, a timestamp that is not RFC 3339 —
 * is 422 `Invalid body`, as in the reference.
 */
import { z } from "zod";
import { unprocessable } from "../errors";
import { parseNetwork } from "./ip";
import type { Permissions } from "./policy";
import { parseRfc3339, type Rfc3339 } from "./time";

export interface TokenCreateRequest {
  permissions: Permissions;
  expiresAt: Rfc3339 | null;
  /** Inactivity TTL in seconds. */
  ttl: number | null;
  ipAllowlist: string[];
}

/** Keeps `ttl * 1000` an exact JavaScript number. */
export const MAX_TTL_SECONDS = Math.floor(Number.MAX_SAFE_INTEGER / 1000);
/** ReductStore has no limit; ours keeps names and token values usable in headers and messages. */
export const MAX_TOKEN_NAME_LENGTH = 256;

const bucketList = z.array(z.string());

const permissionsShape = {
  full_access: z.boolean().optional(),
  read: bucketList.optional(),
  write: bucketList.optional(),
};

const v2Body = z.strictObject({
  permissions: z.strictObject(permissionsShape),
  expires_at: z.string().nullable().optional(),
  ttl: z.number().int().min(0).max(MAX_TTL_SECONDS).nullable().optional(),
  ip_allowlist: z.array(z.string()).optional(),
});

const v1Body = z.strictObject({
  ...permissionsShape,
  ip_allowlist: z.array(z.string()).optional(),
});

const invalidBody = () => unprocessable("Invalid body");

function permissionsOf(input: { full_access?: boolean; read?: string[]; write?: string[] }): Permissions {
  return { full_access: input.full_access ?? false, read: input.read ?? [], write: input.write ?? [] };
}

/** Parses the raw request text into a create request, or throws 422 `Invalid body`. */
export function parseTokenCreateBody(text: string): TokenCreateRequest {
  if (text.trim() === "") throw invalidBody();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalidBody();
  }
  const v2 = v2Body.safeParse(json);
  if (v2.success) {
    let expiresAt: Rfc3339 | null = null;
    if (typeof v2.data.expires_at === "string") {
      const parsed = parseRfc3339(v2.data.expires_at);
      if (!parsed) throw invalidBody();
      expiresAt = parsed;
    }
    return {
      permissions: permissionsOf(v2.data.permissions),
      expiresAt,
      ttl: v2.data.ttl ?? null,
      ipAllowlist: v2.data.ip_allowlist ?? [],
    };
  }
  const v1 = v1Body.safeParse(json);
  if (v1.success) {
    return { permissions: permissionsOf(v1.data), expiresAt: null, ttl: null, ipAllowlist: v1.data.ip_allowlist ?? [] };
  }
  throw invalidBody();
}

/**
 * Token names: non-empty (reference message), visible ASCII without spaces and at most 256
 * characters (ours: the name is the prefix of the secret, which travels in a header).
 */
export function assertTokenName(name: string): void {
  if (name === "") throw unprocessable("Token name can't be empty");
  if (!/^[\x21-\x7e]+$/.test(name)) {
    throw unprocessable("Token name can contain only visible ASCII characters without spaces");
  }
  if (name.length > MAX_TOKEN_NAME_LENGTH) {
    throw unprocessable(`Token name must be at most ${MAX_TOKEN_NAME_LENGTH} characters`);
  }
}

/** Bucket names and `*` wildcards; entries starting with `$` (system buckets) are taken as they are. */
const PERMISSION_ITEM = /^[*a-zA-Z0-9_-]+$/;

/** Every read and write item is a bucket name, a `*` wildcard or a `$` (system) name. */
export function assertPermissionItems(permissions: Permissions): void {
  for (const item of [...permissions.read, ...permissions.write]) {
    if (!item.startsWith("$") && !PERMISSION_ITEM.test(item)) {
      throw unprocessable(`Permission can contain only bucket names or wildcard '*', got '${item}'`);
    }
  }
}

/**
 * The checks of the reference, in its order: permission items, TTL, expiry. Then ours: every
 * allowlist entry must be an IP address or CIDR (the reference stores anything, and an entry that
 * does not parse then silently matches no client).
 */
export function validateTokenCreateRequest(request: TokenCreateRequest, nowMs: number): void {
  assertPermissionItems(request.permissions);
  if (request.ttl === 0) throw unprocessable("Token TTL must be greater than zero");
  if (request.expiresAt !== null && request.expiresAt.ms < nowMs) {
    throw unprocessable("Token expiration date must not be in the past");
  }
  for (const entry of request.ipAllowlist) {
    if (parseNetwork(entry) === undefined) {
      throw unprocessable(`IP allowlist can contain only IP addresses or CIDR ranges, got '${entry}'`);
    }
  }
}
