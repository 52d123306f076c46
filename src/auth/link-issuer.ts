/**
 * Who issued a query link, checked again on every GET of it: the token must still exist and be
 * unexpired, and its current secret (the stored hash, or the RS_API_TOKEN value) keys the link's
 * signature, so a rotated or deleted token leaves its links dead.
 */
import type { Config } from "../config";
import { notFound, unauthorized } from "../errors";
import { AUTH_DISABLED_TOKEN_NAME, UNCONFIGURED_MESSAGE } from "./authenticate";
import type { TokenView } from "./policy";
import { sha256Hex } from "./secrets";
import { rfc3339Now } from "./time";
import { getTokenRow, INIT_TOKEN_NAME, isExpired, provisionedFullAccessView, tokenView } from "./token-store";

export interface LinkIssuer {
  token: TokenView;
  /** Changes whenever the token's value changes; part of the link key. */
  secret: string;
}

export async function linkIssuer(config: Config, db: D1Database, name: string): Promise<LinkIssuer> {
  switch (config.auth.kind) {
    case "unconfigured":
      throw unauthorized(UNCONFIGURED_MESSAGE);
    case "disabled":
      // Links made while auth is off stay valid only while it is off.
      if (name !== AUTH_DISABLED_TOKEN_NAME) throw notFound(`Token '${name}' doesn't exist`);
      return { token: provisionedFullAccessView(name, rfc3339Now(), false), secret: AUTH_DISABLED_TOKEN_NAME };
    case "token": {
      if (name === INIT_TOKEN_NAME && config.auth.initTokenProvisioned) {
        return {
          token: provisionedFullAccessView(INIT_TOKEN_NAME, rfc3339Now(0)),
          secret: await sha256Hex(config.auth.initToken),
        };
      }
      const row = await getTokenRow(db, name);
      if (!row) throw notFound(`Token '${name}' doesn't exist`);
      const nowMs = Date.now();
      if (isExpired(row, nowMs)) throw unauthorized("Token has expired");
      return { token: tokenView(row, nowMs), secret: row.hash };
    }
  }
}
