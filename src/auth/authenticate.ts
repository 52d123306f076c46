/**
 * Bearer-token authentication (§1.4, §7.5, §7.6): resolves the caller of a request or throws the
 * exact 401. Modes: a token from RS_API_TOKEN (the provisioned `init-token`) plus tokens in D1;
 * auth disabled explicitly (RS_DISABLE_AUTH=true); or unconfigured, which refuses every request
 * so that a deployment without the secret is never an open store.
 */
import type { Config } from "../config";
import { unauthorized } from "../errors";
import type { Caller, TokenView } from "./policy";

export const AUTH_DISABLED_TOKEN_NAME = "AUTHENTICATION-DISABLED";
export const INIT_TOKEN_NAME = "init-token";
export const UNCONFIGURED_MESSAGE =
  "Authentication is not configured: set the RS_API_TOKEN secret, or RS_DISABLE_AUTH=true to run an open store";

export function fullAccessToken(name: string, provisioned: boolean): TokenView {
  return {
    name,
    value: "",
    created_at: new Date(0).toISOString(),
    permissions: { full_access: true, read: [], write: [] },
    is_provisioned: provisioned,
    expires_at: null,
    ttl: null,
    last_access: null,
    ip_allowlist: [],
    is_expired: false,
  };
}

/** Extracts the token from `Authorization: Bearer <token>`. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || !header.startsWith("Bearer ")) {
    throw unauthorized("No bearer token in request header");
  }
  return header.slice("Bearer ".length);
}

/** Constant-time comparison of two secrets (compares their SHA-256 digests). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

export interface AuthRequest {
  authorization: string | undefined;
  clientIp: string | undefined;
}

/**
 * Finds a stored (non-init) token by its value. Returns undefined when no token has that value.
 * Throws the exact 401 for expired tokens or a client IP outside the allowlist.
 */
export type StoredTokenLookup = (value: string, request: AuthRequest) => Promise<TokenView | undefined>;

export async function authenticate(config: Config, request: AuthRequest, lookup: StoredTokenLookup): Promise<Caller> {
  switch (config.auth.kind) {
    case "disabled":
      return { token: fullAccessToken(AUTH_DISABLED_TOKEN_NAME, true) };
    case "unconfigured":
      throw unauthorized(UNCONFIGURED_MESSAGE);
    case "token": {
      const value = bearerToken(request.authorization);
      if (await secretsEqual(value, config.auth.initToken)) {
        return { token: fullAccessToken(INIT_TOKEN_NAME, true) };
      }
      const stored = value === "" ? undefined : await lookup(value, request);
      if (!stored) throw unauthorized("Invalid token");
      return { token: stored };
    }
  }
}
