/**
 * Who is calling and what they may do. Every handler asks for one policy before it touches storage.
 * Permission lists hold bucket names and `prefix*` wildcards; wildcards never match
 * `$`-prefixed (system) buckets.
 */
import { forbidden } from "../errors";

export interface Permissions {
  full_access: boolean;
  read: string[];
  write: string[];
}

/** The token object as the API returns it (value always empty when read back). */
export interface TokenView {
  name: string;
  value: string;
  created_at: string;
  permissions: Permissions;
  is_provisioned: boolean;
  expires_at: string | null;
  ttl: number | null;
  last_access: string | null;
  ip_allowlist: string[];
  is_expired: boolean;
}

/** The authenticated caller of one request. */
export interface Caller {
  token: TokenView;
}

export function bucketMatches(pattern: string, bucket: string): boolean {
  if (pattern === bucket) return true;
  if (bucket.startsWith("$") || !pattern.endsWith("*")) return false;
  return bucket.startsWith(pattern.slice(0, -1));
}

export function canRead(caller: Caller, bucket: string): boolean {
  const { permissions } = caller.token;
  return permissions.full_access || permissions.read.some((pattern) => bucketMatches(pattern, bucket));
}

/** Only the server writes system events; no token, full access included, may write `$system`. */
export const SERVER_WRITTEN_BUCKET = "$system";

export function canWrite(caller: Caller, bucket: string): boolean {
  if (bucket === SERVER_WRITTEN_BUCKET) return false;
  const { permissions } = caller.token;
  return permissions.full_access || permissions.write.some((pattern) => bucketMatches(pattern, bucket));
}

export function requireFullAccess(caller: Caller): void {
  if (!caller.token.permissions.full_access) {
    throw forbidden(`Token '${caller.token.name}' doesn't have full access`);
  }
}

export function requireRead(caller: Caller, bucket: string): void {
  if (!canRead(caller, bucket)) {
    throw forbidden(`Token '${caller.token.name}' doesn't have read access to bucket '${bucket}'`);
  }
}

export function requireWrite(caller: Caller, bucket: string): void {
  if (!canWrite(caller, bucket)) {
    throw forbidden(`Token '${caller.token.name}' doesn't have write access to bucket '${bucket}'`);
  }
}
