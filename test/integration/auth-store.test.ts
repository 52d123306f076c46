/**
 * The token store against this file's own D1 (storage is isolated per test file), for rules the
 * HTTP API cannot reach while RS_API_TOKEN provides a full-access init token: the last full-access
 * token, and the init token's row following RS_API_TOKEN. Real D1, nothing mocked.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { authenticate } from "../../src/auth/authenticate";
import { verifyTokenHash } from "../../src/auth/secrets";
import type { TokenCreateRequest } from "../../src/auth/token-request";
import { createToken, deleteToken, ensureInitToken, getTokenRow, rotateToken } from "../../src/auth/token-store";
import { parseConfig } from "../../src/config";
import { HttpError } from "../../src/errors";
import { BASE, expectError, TOKEN } from "../helpers/http";

const request = (full_access: boolean): TokenCreateRequest => ({
  permissions: { full_access, read: [], write: [] },
  expiresAt: null,
  ttl: null,
  ipAllowlist: [],
});

async function rejection(promise: Promise<unknown>): Promise<{ status: number; message: string } | undefined> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { status: error.status, message: error.message };
  }
  return undefined;
}

async function appFetch(overrides: Record<string, string | undefined>, method: string, path: string, token?: string) {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  return createApp().fetch(new Request(`${BASE}${path}`, { method, headers }), { ...env, ...overrides }, {
    waitUntil() {},
    passThroughOnException() {},
    props: {},
  } as unknown as ExecutionContext);
}

// Runs first: until something needs the init token, this file's D1 has no init-token row.
describe("the last full-access token", () => {
  it("cannot be removed; others can", async () => {
    expect(await getTokenRow(env.DB, "init-token")).toBeNull();
    await createToken(env.DB, "admin-a", request(true));
    await createToken(env.DB, "admin-b", request(true));
    await createToken(env.DB, "reader", request(false));

    expect(await rejection(deleteToken(env.DB, "admin-a"))).toBeUndefined();
    expect(await rejection(deleteToken(env.DB, "admin-b"))).toEqual({
      status: 409,
      message: "Can't remove token 'admin-b': at least one full-access token must remain",
    });
    expect(await getTokenRow(env.DB, "admin-b")).not.toBeNull();
    expect(await rejection(deleteToken(env.DB, "reader"))).toBeUndefined();
    expect(await rejection(deleteToken(env.DB, "reader"))).toEqual({ status: 404, message: "Token 'reader' doesn't exist" });

    // The provisioned init token counts as a full-access token.
    await ensureInitToken(env.DB, TOKEN);
    expect(await rejection(deleteToken(env.DB, "admin-b"))).toBeUndefined();
    expect(await rejection(deleteToken(env.DB, "init-token"))).toEqual({
      status: 409,
      message: "Can't remove provisioned token 'init-token'",
    });
  });

  it("concurrent deletes of the last two full-access tokens leave one", async () => {
    await env.DB.prepare("DELETE FROM tokens WHERE name = 'init-token'").run();
    await createToken(env.DB, "race-a", request(true));
    await createToken(env.DB, "race-b", request(true));
    const results = await Promise.all([rejection(deleteToken(env.DB, "race-a")), rejection(deleteToken(env.DB, "race-b"))]);
    expect(results.filter((result) => result === undefined)).toHaveLength(1);
    expect(results.filter((result) => result?.status === 409)).toHaveLength(1);
    const { results: left } = await env.DB.prepare("SELECT name FROM tokens WHERE full_access = 1").all<{ name: string }>();
    expect(left).toHaveLength(1);
  });
});

describe("store errors", () => {
  it("rotate and delete of unknown names are 404; provisioned rows are protected", async () => {
    expect(await rejection(rotateToken(env.DB, "ghost"))).toEqual({ status: 404, message: "Token 'ghost' doesn't exist" });
    expect(await rejection(deleteToken(env.DB, "ghost"))).toEqual({ status: 404, message: "Token 'ghost' doesn't exist" });
    await ensureInitToken(env.DB, TOKEN);
    expect(await rejection(rotateToken(env.DB, "init-token"))).toEqual({
      status: 409,
      message: "Can't rotate provisioned token 'init-token'",
    });
  });
});

describe("the init token row follows RS_API_TOKEN", () => {
  it("keeps created_at while the value is the same and restarts it when the value changes", async () => {
    const first = await ensureInitToken(env.DB, "first-secret");
    const again = await ensureInitToken(env.DB, "first-secret");
    expect(again.created_at).toBe(first.created_at);
    expect(first).toMatchObject({ lookup: null, is_provisioned: 1, full_access: 1, read_buckets: "[]", write_buckets: "[]" });
    expect(await verifyTokenHash("first-secret", first.hash)).toBe(true);

    await new Promise((resolve) => setTimeout(resolve, 5));
    const changed = await ensureInitToken(env.DB, "second-secret");
    expect(Date.parse(changed.created_at)).toBeGreaterThan(Date.parse(first.created_at));
    expect(await verifyTokenHash("second-secret", changed.hash)).toBe(true);
    expect(await verifyTokenHash("first-secret", changed.hash)).toBe(false);
  });

  it("over HTTP: a new RS_API_TOKEN is the only init value accepted, and GET shows its created_at", async () => {
    const other = { RS_API_TOKEN: "rotated-env-secret" };
    await expectError(await appFetch(other, "GET", "/me", TOKEN), 401, "Invalid token");
    const me = await appFetch(other, "GET", "/me", "rotated-env-secret");
    expect(me.status).toBe(200);
    const view = (await me.json()) as { name: string; created_at: string };
    expect(view.name).toBe("init-token");
    const get = await appFetch(other, "GET", "/tokens/init-token", "rotated-env-secret");
    expect(((await get.json()) as { created_at: string }).created_at).toBe(view.created_at);
    const row = await getTokenRow(env.DB, "init-token");
    expect(await verifyTokenHash("rotated-env-secret", row!.hash)).toBe(true);
  });
});

describe("authenticate() on header values fetch cannot send", () => {
  const config = parseConfig({ RS_API_TOKEN: TOKEN });
  it.each([
    ["Bearer ", 401, "Invalid token"],
    ["Bearer  ", 401, "Invalid token"],
    ["Bearer", 401, "No bearer token in request header"],
    [" Bearer x", 401, "No bearer token in request header"],
  ])("%j → %i %s", async (authorization, status, message) => {
    expect(await rejection(authenticate(config, { authorization, clientIp: undefined }, env.DB))).toEqual({ status, message });
  });

  it("the init token authenticates against the env value", async () => {
    const caller = await authenticate(config, { authorization: `Bearer ${TOKEN}`, clientIp: undefined }, env.DB);
    expect(caller.token).toMatchObject({ name: "init-token", is_provisioned: true, permissions: { full_access: true } });
  });
});
