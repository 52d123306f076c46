/**
 * Bearer-token authentication: resolves the caller of a request or throws the
 * exact 401. Secure by default, decided by config.ts:
 *  - RS_API_TOKEN set → auth on: the provisioned `init-token` (checked against the env in constant
 *    time, no D1 read) plus the tokens stored in D1 (read on every request, never cached), those
 *    provisioned from RS_TOKEN_<ID>_* included;
 *  - RS_INIT_API_TOKEN set (and no RS_API_TOKEN) → auth on: `init-token` is a normal stored token,
 *    created with that value the first time the value is presented and no row of that name exists,
 *    then rotated and deleted like any other (a rotated value is never replaced by the env again);
 *  - RS_DISABLE_AUTH=true (and no RS_API_TOKEN) → auth off: every request acts as the synthetic
 *    full-access token `AUTHENTICATION-DISABLED`;
 *  - neither → unconfigured: every request except /alive and /ready gets 401, so a deployment
 *    that forgot the secret is never an open store.
 */
import type { Config } from "../config";
import { unauthorized } from "../errors";
import type { Caller } from "./policy";
import { secretsEqual } from "./secrets";
import { rfc3339Now } from "./time";
import {
  type AuthRequest,
  createInitialTokenIfMissing,
  findStoredToken,
  findTokenByNameAndValue,
  INIT_TOKEN_NAME,
  initTokenView,
  provisionedFullAccessView,
} from "./token-store";

export { INIT_TOKEN_NAME } from "./token-store";
export type { AuthRequest };

export const AUTH_DISABLED_TOKEN_NAME = "AUTHENTICATION-DISABLED";
export const UNCONFIGURED_MESSAGE =
  "Authentication is not configured: set the RS_API_TOKEN secret, or RS_DISABLE_AUTH=true to run an open store";

/** Extracts the token from `Authorization: Bearer <token>` (prefix is case-sensitive, as in the reference). */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || !header.startsWith("Bearer ")) {
    throw unauthorized("No bearer token in request header");
  }
  return header.slice("Bearer ".length);
}

export async function authenticate(config: Config, request: AuthRequest, db: D1Database): Promise<Caller> {
  switch (config.auth.kind) {
    case "disabled":
      // As the reference's no-auth repository: not provisioned, created "now".
      return { token: provisionedFullAccessView(AUTH_DISABLED_TOKEN_NAME, rfc3339Now(), false) };
    case "unconfigured":
      throw unauthorized(UNCONFIGURED_MESSAGE);
    case "token": {
      const value = bearerToken(request.authorization);
      if (await secretsEqual(value, config.auth.initToken)) {
        if (config.auth.initTokenProvisioned) return { token: await initTokenView(db, config.auth.initToken) };
        await createInitialTokenIfMissing(db, config.auth.initToken);
        const initial = await findTokenByNameAndValue(db, INIT_TOKEN_NAME, value, request);
        if (!initial) throw unauthorized("Invalid token");
        return { token: initial };
      }
      const stored = value === "" ? undefined : await findStoredToken(db, value, request);
      if (!stored) throw unauthorized("Invalid token");
      return { token: stored };
    }
  }
}
