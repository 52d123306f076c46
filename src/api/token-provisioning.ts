/**
 * Tokens from `RS_TOKEN_<ID>_{NAME,VALUE,FULL_ACCESS,READ,WRITE,EXPIRES_AT}`, as ReductStore
 * provisions them at start: VALUE is the secret clients send (any string the operator chooses),
 * READ and WRITE are comma-separated bucket names or wildcards, FULL_ACCESS is `true` or `false`
 * (default false), EXPIRES_AT an RFC 3339 date. ReductStore has no TTL or IP allowlist variables.
 * How the tokens are written to D1 (taken over, kept, un-provisioned) is in
 * auth/provisioned-tokens.ts.
 *
 * A group with an invalid or missing value is skipped with one error line and its token left as it
 * is (ReductStore drops a group without VALUE with a warning and ignores an invalid expiry; an
 * expiry that silently vanished would make a token live forever, so ours refuses the group).
 * Workers have no start: each isolate applies the groups once, before its first API answer, which
 * is idempotent; a group removed from the environment un-provisions its token at the next start.
 */
import { applyProvisionedTokens, type ProvisionedToken } from "../auth/provisioned-tokens";
import { parseRfc3339 } from "../auth/time";
import { assertPermissionItems, assertTokenName } from "../auth/token-request";
import { INIT_TOKEN_NAME } from "../auth/token-store";
import type { Config } from "../config";
import { HttpError, unprocessable } from "../errors";
import type { Bindings } from "./context";

export interface ParsedTokenGroups {
  tokens: ProvisionedToken[];
  /** Names of the groups that were skipped: their tokens are left as they are. */
  skipped: string[];
}

function logError(msg: string): void {
  console.error(JSON.stringify({ level: "ERROR", msg }));
}

function list(text: string | undefined): string[] {
  return (text ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** Every `RS_TOKEN_<ID>_NAME` group of the environment, by variable name order. */
export function provisionedTokens(env: Record<string, unknown>): ParsedTokenGroups {
  const parsed: ParsedTokenGroups = { tokens: [], skipped: [] };
  const groupOf = new Map<string, string>();
  for (const key of Object.keys(env).sort()) {
    const match = /^RS_TOKEN_(.+)_NAME$/.exec(key);
    const name = env[key];
    if (!match || typeof name !== "string" || name === "") continue;
    const variable = (field: string) => `RS_TOKEN_${match[1]}_${field}`;
    const read = (field: string): string | undefined => {
      const value = env[variable(field)];
      return typeof value === "string" && value !== "" ? value : undefined;
    };
    try {
      assertTokenName(name);
      if (name === INIT_TOKEN_NAME) throw unprocessable(`the name '${INIT_TOKEN_NAME}' is the init token's`);
      const sameName = groupOf.get(name);
      if (sameName !== undefined) throw unprocessable(`${sameName} names it too`);
      groupOf.set(name, key);
      const value = read("VALUE");
      if (value === undefined) throw unprocessable(`${variable("VALUE")} is not set`);
      const fullAccess = read("FULL_ACCESS")?.trim().toLowerCase() ?? "false";
      if (fullAccess !== "true" && fullAccess !== "false") {
        throw unprocessable(`Invalid value of ${variable("FULL_ACCESS")}: '${read("FULL_ACCESS")}' is not true or false`);
      }
      const permissions = { full_access: fullAccess === "true", read: list(read("READ")), write: list(read("WRITE")) };
      assertPermissionItems(permissions);
      const expiresText = read("EXPIRES_AT")?.trim();
      const expires = expiresText === undefined ? undefined : parseRfc3339(expiresText);
      if (expiresText !== undefined && expires === undefined) {
        throw unprocessable(`Invalid value of ${variable("EXPIRES_AT")}: '${expiresText}' is not an RFC 3339 date`);
      }
      parsed.tokens.push({ name, value, permissions, expiresAt: expires?.canonical ?? null });
    } catch (error) {
      const reason = error instanceof HttpError ? error.message : String(error);
      logError(`Failed to provision token '${name}': ${reason}`);
      parsed.skipped.push(name);
    }
  }
  return parsed;
}

/** Provisioning runs of this isolate, by the raw `RS_TOKEN_*` variables and auth mode they applied. */
const applied = new Map<string, Promise<void>>();

function rawGroups(env: Record<string, unknown>, config: Config): string {
  const entries = Object.entries(env).filter(([key]) => key.startsWith("RS_TOKEN_"));
  return JSON.stringify([config.auth.kind, entries.sort(([a], [b]) => (a < b ? -1 : 1))]);
}

/**
 * Applies the environment's token groups once per isolate and variable set (again after a
 * failure), also when there are none, so a removed group is un-provisioned. Later requests only
 * compare the raw variables, so an invalid group is logged once.
 */
export function provisionTokensOnce(env: Bindings, config: Config): Promise<void> {
  const variables = env as unknown as Record<string, unknown>;
  const key = rawGroups(variables, config);
  let run = applied.get(key);
  if (!run) {
    run = (async () => {
      if (config.auth.kind !== "token") {
        for (const variable of Object.keys(variables).sort()) {
          const name = variables[variable];
          if (/^RS_TOKEN_.+_NAME$/.test(variable) && typeof name === "string" && name !== "") {
            logError(`Failed to provision token '${name}': Authentication is disabled`);
          }
        }
        return;
      }
      const { tokens, skipped } = provisionedTokens(variables);
      const initToken = config.auth.initToken;
      // The init token's value authenticates as the init token first, so a group with that value
      // could never be used: refused like a value another token has.
      const usable = tokens.filter((token) => {
        if (token.value !== initToken) return true;
        logError(`Failed to provision token '${token.name}': its value is the value of another token`);
        skipped.push(token.name);
        return false;
      });
      await applyProvisionedTokens(env.DB, usable, skipped);
    })().catch((error: unknown) => {
      applied.delete(key);
      logError(`Failed to provision tokens: ${String(error)}`);
    });
    applied.set(key, run);
  }
  return run;
}
