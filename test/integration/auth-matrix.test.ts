/**
 * Authentication and authorization, table-driven:
 *  1. every error status + exact x-reduct-error the Token API and the auth middleware produce;
 *  2. the permission matrix of the token endpoints (who may do what, and that refusals change nothing);
 *  3. the IP allowlist through CF-Connecting-IP / forwarded headers;
 *  4. the three auth modes (token, disabled, unconfigured).
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { UNCONFIGURED_MESSAGE } from "../../src/auth/authenticate";
import { api, BASE, expectError, TOKEN, uniqueName } from "../helpers/http";

interface Created {
  name: string;
  value: string;
}

async function create(body: unknown, prefix = "token"): Promise<Created> {
  const name = uniqueName(prefix);
  const response = await api("POST", `/tokens/${name}`, { body: JSON.stringify(body) });
  expect(response.status, await response.clone().text()).toBe(200);
  const { value } = (await response.json()) as { value: string };
  return { name, value };
}

async function exists(name: string): Promise<boolean> {
  const status = (await api("GET", `/tokens/${name}`)).status;
  expect([200, 404]).toContain(status);
  return status === 200;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the app with a modified environment, with a request body (test/helpers' apiWithEnv has none). */
async function appFetch(
  overrides: Record<string, string | undefined>,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  const request = new Request(`${BASE}${path}`, { method, headers: init.headers ?? {}, body: init.body ?? null });
  return createApp().fetch(request, { ...env, ...overrides }, {
    waitUntil() {},
    passThroughOnException() {},
    props: {},
  } as unknown as ExecutionContext);
}

// Tokens every table below uses; created once, the expiring ones left to expire.
const t = {} as Record<
  | "noPerm"
  | "reader"
  | "writer"
  | "full"
  | "expiredByDate"
  | "expiredByTtl"
  | "expiredAllowlisted"
  | "allowlisted"
  | "allowlistedNoPerm"
  | "duplicate",
  Created
>;

beforeAll(async () => {
  const soon = () => new Date(Date.now() + 800).toISOString();
  t.expiredByDate = await create({ permissions: { full_access: true }, expires_at: soon() });
  t.expiredByTtl = await create({ permissions: { full_access: true }, ttl: 1 });
  t.expiredAllowlisted = await create({ permissions: { full_access: true }, expires_at: soon(), ip_allowlist: ["203.0.113.10"] });
  t.noPerm = await create({});
  t.reader = await create({ permissions: { read: ["*"] } });
  t.writer = await create({ permissions: { write: ["*"] } });
  t.full = await create({ permissions: { full_access: true } });
  t.allowlisted = await create({ permissions: { full_access: true }, ip_allowlist: ["203.0.113.10", "2001:db8::/32"] });
  t.allowlistedNoPerm = await create({ ip_allowlist: ["203.0.113.10"] });
  t.duplicate = await create({});
  await sleep(1100); // the expiring tokens are now past expires_at / idle for more than their 1 s TTL
});

interface ErrorCase {
  label: string;
  send: () => Promise<Response>;
  status: number;
  error: string;
  /** A token name the request must not have created. */
  notCreated?: string;
}

const bearer = (value: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${value}`, ...extra });
const post = (name: string, body: string | null, token: string | null = TOKEN, headers: Record<string, string> = {}) =>
  api("POST", `/tokens/${name}`, { token, body, headers });

const invalidBodies: [string, string | null][] = [
  ["no body", null],
  ["empty body", ""],
  ["invalid JSON", "{"],
  ["JSON null", "null"],
  ["JSON array", "[]"],
  ["v1 unknown key", '{"full_access": true, "admin": true}'],
  ["v2 unknown key", '{"permissions": {"full_access": true}, "expires_in": "5d"}'],
  ["v2 unknown permission key", '{"permissions": {"full_access": true, "delete": true}}'],
  ["mixed v1/v2 keys", '{"permissions": {}, "read": []}'],
  ["permissions not an object", '{"permissions": "invalid"}'],
  ["expires_at not RFC 3339", '{"permissions": {}, "expires_at": "2030-01-01"}'],
  ["negative ttl", '{"permissions": {}, "ttl": -5}'],
  ["wrong types", '{"full_access": "yes"}'],
];

describe("every error status and x-reduct-error (table)", () => {
  const cases: ErrorCase[] = [
    // Parsing the header and finding the token.
    {
      label: "no Authorization header",
      send: () => api("GET", "/tokens", { token: null }),
      status: 401,
      error: "No bearer token in request header",
    },
    {
      label: "empty Authorization header",
      send: () => api("GET", "/tokens", { headers: { authorization: "" } }),
      status: 401,
      error: "No bearer token in request header",
    },
    {
      label: "Basic instead of Bearer",
      send: () => api("GET", "/tokens", { headers: { authorization: "Basic dXNlcjpwYXNz" } }),
      status: 401,
      error: "No bearer token in request header",
    },
    {
      label: "lowercase bearer prefix",
      send: () => api("GET", "/tokens", { headers: { authorization: `bearer ${TOKEN}` } }),
      status: 401,
      error: "No bearer token in request header",
    },
    {
      // Fetch trims header values, so `Bearer ` arrives as `Bearer` (no prefix with its space).
      label: "Bearer with an empty value",
      send: () => api("GET", "/tokens", { headers: { authorization: "Bearer " } }),
      status: 401,
      error: "No bearer token in request header",
    },
    { label: "unknown value", send: () => api("GET", "/tokens", { token: "ABCB0001" }), status: 401, error: "Invalid token" },
    {
      label: "unknown value of the stored shape",
      send: () => api("GET", "/tokens", { token: `${t.full.name}-0123456789abcdef0123456789abcdef` }),
      status: 401,
      error: "Invalid token",
    },
    {
      label: "init token with a suffix",
      send: () => api("GET", "/tokens", { token: `${TOKEN}x` }),
      status: 401,
      error: "Invalid token",
    },
    {
      label: "stored value with one character changed",
      send: () => api("GET", "/me", { token: `${t.full.value.slice(0, -1)}${t.full.value.endsWith("0") ? "1" : "0"}` }),
      status: 401,
      error: "Invalid token",
    },
    // Expiry, then IP allowlist, then policy.
    {
      label: "past expires_at",
      send: () => api("GET", "/me", { token: t.expiredByDate.value }),
      status: 401,
      error: "Token has expired",
    },
    {
      label: "idle longer than ttl",
      send: () => api("GET", "/me", { token: t.expiredByTtl.value }),
      status: 401,
      error: "Token has expired",
    },
    {
      label: "expiry is checked before the IP allowlist",
      send: () => api("GET", "/me", { token: t.expiredAllowlisted.value, headers: { "x-forwarded-for": "203.0.113.11" } }),
      status: 401,
      error: "Token has expired",
    },
    {
      label: "client IP not in allowlist (X-Forwarded-For from a local client)",
      send: () => api("GET", "/me", { token: t.allowlisted.value, headers: { "x-forwarded-for": "203.0.113.11" } }),
      status: 401,
      error: "Token is not allowed for client IP 203.0.113.11",
    },
    {
      label: "public CF-Connecting-IP wins over a forged X-Forwarded-For",
      send: () =>
        api("GET", "/me", {
          token: t.allowlisted.value,
          headers: { "cf-connecting-ip": "198.51.100.7", "x-forwarded-for": "203.0.113.10" },
        }),
      status: 401,
      error: "Token is not allowed for client IP 198.51.100.7",
    },
    {
      label: "IPv6 client outside the IPv6 CIDR",
      send: () => api("GET", "/me", { token: t.allowlisted.value, headers: { "cf-connecting-ip": "2001:DB9::1" } }),
      status: 401,
      error: "Token is not allowed for client IP 2001:db9::1",
    },
    {
      label: "allowlisted token and no client IP at all",
      send: () => api("GET", "/me", { token: t.allowlisted.value }),
      status: 401,
      error: "Client IP is required for this token",
    },
    {
      label: "IP allowlist is checked before the policy",
      send: () => api("GET", "/tokens", { token: t.allowlistedNoPerm.value, headers: { "x-forwarded-for": "198.51.100.1" } }),
      status: 401,
      error: "Token is not allowed for client IP 198.51.100.1",
    },
    // Policy: 403.
    {
      label: "no full access (no permissions)",
      send: () => api("GET", "/tokens", { token: t.noPerm.value }),
      status: 403,
      error: `Token '${"NOPERM"}' doesn't have full access`,
    },
    // Create.
    {
      label: "create an existing name",
      send: () => post(t.duplicate.name, "{}"),
      status: 409,
      error: `Token '${"DUPLICATE"}' already exists`,
    },
    { label: "create init-token", send: () => post("init-token", "{}"), status: 409, error: "Token 'init-token' already exists" },
    {
      label: "create with an empty name",
      send: () => api("POST", "/tokens", { body: "{}" }),
      status: 422,
      error: "Token name can't be empty",
    },
    {
      label: "create with a space in the name",
      send: () => post("a%20b", "{}"),
      status: 422,
      error: "Token name can contain only visible ASCII characters without spaces",
      notCreated: "a%20b",
    },
    ...(["a/b", "%!", "my.bucket", ""] as const).map(
      (item): ErrorCase => ({
        label: `create with permission item '${item}'`,
        send: () => post(`bad-perm-${encodeURIComponent(item)}`, JSON.stringify({ read: ["ok"], write: [item] })),
        status: 422,
        error: `Permission can contain only bucket names or wildcard '*', got '${item}'`,
        notCreated: `bad-perm-${encodeURIComponent(item)}`,
      }),
    ),
    {
      label: "create with ttl 0",
      send: () => post("ttl-zero", '{"permissions": {"full_access": true}, "ttl": 0}'),
      status: 422,
      error: "Token TTL must be greater than zero",
      notCreated: "ttl-zero",
    },
    {
      label: "create with expires_at in the past",
      send: () => post("expired-at-birth", '{"permissions": {}, "expires_at": "2020-01-01T00:00:00Z"}'),
      status: 422,
      error: "Token expiration date must not be in the past",
      notCreated: "expired-at-birth",
    },
    {
      label: "create with an allowlist entry that is not an IP",
      send: () => post("bad-ip", '{"permissions": {}, "ip_allowlist": ["10.0.0.1", "10.0.0.0/40"]}'),
      status: 422,
      error: "IP allowlist can contain only IP addresses or CIDR ranges, got '10.0.0.0/40'",
      notCreated: "bad-ip",
    },
    ...invalidBodies.map(
      ([label, body]): ErrorCase => ({
        label: `create with ${label}`,
        send: () => post("invalid-body", body),
        status: 422,
        error: "Invalid body",
        notCreated: "invalid-body",
      }),
    ),
    {
      label: "create with a body over 1 MiB",
      send: () => post("huge-body", JSON.stringify({ read: Array.from({ length: 120_000 }, () => "bucket") })),
      status: 413,
      error: "Request body is larger than 1048576 bytes",
      notCreated: "huge-body",
    },
    // Get / delete / rotate.
    {
      label: "get a missing token",
      send: () => api("GET", "/tokens/no-such-token"),
      status: 404,
      error: "Token 'no-such-token' doesn't exist",
    },
    {
      label: "delete a missing token",
      send: () => api("DELETE", "/tokens/no-such-token"),
      status: 404,
      error: "Token 'no-such-token' doesn't exist",
    },
    {
      label: "rotate a missing token",
      send: () => api("POST", "/tokens/no-such-token/rotate"),
      status: 404,
      error: "Token 'no-such-token' doesn't exist",
    },
    {
      label: "delete the provisioned init token",
      send: () => api("DELETE", "/tokens/init-token"),
      status: 409,
      error: "Can't remove provisioned token 'init-token'",
    },
    {
      label: "rotate the provisioned init token",
      send: () => api("POST", "/tokens/init-token/rotate"),
      status: 409,
      error: "Can't rotate provisioned token 'init-token'",
    },
    {
      label: "rotate a token past its expires_at",
      send: () => api("POST", `/tokens/${t.expiredByDate.name}/rotate`),
      status: 422,
      error: `Can't rotate expired token '${"EXPIRED"}'`,
    },
    // Modes.
    ...(
      [
        ["POST", "/tokens/x", "{}"],
        ["GET", "/tokens/x", null],
        ["POST", "/tokens/x/rotate", null],
      ] as const
    ).map(
      ([method, path, body]): ErrorCase => ({
        label: `auth disabled: ${method} ${path}`,
        send: () => appFetch({ RS_API_TOKEN: "", RS_DISABLE_AUTH: "true" }, method, path, body === null ? {} : { body }),
        status: 400,
        error: "Authentication is disabled",
      }),
    ),
    {
      label: "auth unconfigured",
      send: () => appFetch({ RS_API_TOKEN: undefined, RS_DISABLE_AUTH: undefined }, "GET", "/tokens", { headers: bearer(TOKEN) }),
      status: 401,
      error: UNCONFIGURED_MESSAGE,
    },
  ];

  // Names only known after beforeAll.
  const resolve = (message: string) =>
    message.replace("NOPERM", t.noPerm.name).replace("DUPLICATE", t.duplicate.name).replace("EXPIRED", t.expiredByDate.name);

  it.each(cases.map((c) => [c.label, c] as const))("%s", async (_label, c) => {
    await expectError(await c.send(), c.status, resolve(c.error));
    if (c.notCreated !== undefined) expect(await exists(c.notCreated)).toBe(false);
  });

  it("covers each status the contract lists for tokens and auth", () => {
    expect(new Set(cases.map((c) => c.status))).toEqual(new Set([400, 401, 403, 404, 409, 413, 422]));
  });
});

describe("permission matrix of the token endpoints", () => {
  type Caller = { label: string; headers: () => Record<string, string>; token: () => string | null };
  const callers: (Caller & { expect: () => [number, string] | "ok" })[] = [
    { label: "anonymous", token: () => null, headers: () => ({}), expect: () => [401, "No bearer token in request header"] },
    {
      label: "empty Authorization",
      token: () => null,
      headers: () => ({ authorization: "" }),
      expect: () => [401, "No bearer token in request header"],
    },
    { label: "bad token", token: () => "ABCB0001", headers: () => ({}), expect: () => [401, "Invalid token"] },
    { label: "expired token", token: () => t.expiredByDate.value, headers: () => ({}), expect: () => [401, "Token has expired"] },
    {
      label: "no-permission token",
      token: () => t.noPerm.value,
      headers: () => ({}),
      expect: () => [403, `Token '${t.noPerm.name}' doesn't have full access`],
    },
    {
      label: "read-all token",
      token: () => t.reader.value,
      headers: () => ({}),
      expect: () => [403, `Token '${t.reader.name}' doesn't have full access`],
    },
    {
      label: "write-all token",
      token: () => t.writer.value,
      headers: () => ({}),
      expect: () => [403, `Token '${t.writer.name}' doesn't have full access`],
    },
    { label: "full-access token", token: () => t.full.value, headers: () => ({}), expect: () => "ok" },
    {
      label: "allowlisted full-access token from an allowed IPv6",
      token: () => t.allowlisted.value,
      headers: () => ({ "cf-connecting-ip": "2001:db8::42" }),
      expect: () => "ok",
    },
    { label: "init token", token: () => TOKEN, headers: () => ({}), expect: () => "ok" },
  ];

  // Each endpoint: send as the caller, then check the effect happened exactly when allowed.
  const endpoints: {
    label: string;
    run: (caller: Caller) => Promise<{ response: Response; effect: () => Promise<boolean> }>;
  }[] = [
    {
      label: "GET /tokens",
      run: async (caller) => {
        const response = await api("GET", "/tokens", { token: caller.token(), headers: caller.headers() });
        const body = response.status === 200 ? await response.clone().json() : undefined;
        return { response, effect: async () => Array.isArray((body as { tokens?: unknown })?.tokens) };
      },
    },
    {
      label: "POST /tokens/:name",
      run: async (caller) => {
        const name = uniqueName("target");
        const response = await api("POST", `/tokens/${name}`, { token: caller.token(), headers: caller.headers(), body: "{}" });
        return { response, effect: () => exists(name) };
      },
    },
    {
      label: "GET /tokens/:name",
      run: async (caller) => {
        const target = await create({ read: ["x"] }, "target");
        const response = await api("GET", `/tokens/${target.name}`, { token: caller.token(), headers: caller.headers() });
        const body = response.status === 200 ? ((await response.clone().json()) as { name: string }) : undefined;
        return { response, effect: async () => body?.name === target.name };
      },
    },
    {
      label: "DELETE /tokens/:name",
      run: async (caller) => {
        const target = await create({ read: ["x"] }, "target");
        const response = await api("DELETE", `/tokens/${target.name}`, { token: caller.token(), headers: caller.headers() });
        return { response, effect: async () => !(await exists(target.name)) };
      },
    },
    {
      label: "POST /tokens/:name/rotate",
      run: async (caller) => {
        const target = await create({ read: ["x"] }, "target");
        const response = await api("POST", `/tokens/${target.name}/rotate`, { token: caller.token(), headers: caller.headers() });
        return { response, effect: async () => (await api("GET", "/me", { token: target.value })).status === 401 };
      },
    },
  ];

  const rows = callers.flatMap((caller) =>
    endpoints.map((endpoint) => [`${caller.label} → ${endpoint.label}`, caller, endpoint] as const),
  );

  it.each(rows)("%s", async (_label, caller, endpoint) => {
    const { response, effect } = await endpoint.run(caller);
    const expected = caller.expect();
    if (expected === "ok") {
      expect(response.status, await response.clone().text()).toBe(200);
      expect(await effect()).toBe(true);
    } else {
      await expectError(response, expected[0], expected[1]);
      expect(await effect()).toBe(false);
    }
  });
});

describe("bucket policies through tokens", () => {
  it.each([
    ["read-all", "GET", "reader", 200, undefined],
    ["write-all", "GET", "writer", 403, "Token 'WHO' doesn't have read access to bucket 'BUCKET'"],
    ["no-permission", "GET", "noPerm", 403, "Token 'WHO' doesn't have read access to bucket 'BUCKET'"],
    ["full-access", "GET", "full", 200, undefined],
    ["no-permission", "HEAD", "noPerm", 200, undefined],
    ["read-all", "DELETE", "reader", 403, "Token 'WHO' doesn't have full access"],
    ["write-all", "PUT", "writer", 403, "Token 'WHO' doesn't have full access"],
  ] as const)("%s token: %s /b/:bucket (caller %s) → %i", async (_label, method, who, status, error) => {
    const bucket = uniqueName("bucket");
    expect((await api("POST", `/b/${bucket}`)).status).toBe(200);
    const caller = t[who];
    const response = await api(method, `/b/${bucket}`, { token: caller.value, body: method === "PUT" ? "{}" : null });
    if (error === undefined) expect(response.status).toBe(status);
    else await expectError(response, status, error.replace("WHO", caller.name).replace("BUCKET", bucket));
    expect((await api("HEAD", `/b/${bucket}`)).status).toBe(200); // refused requests changed nothing
  });

  it("a prefix wildcard reads matching buckets only", async () => {
    const prefix = uniqueName("cam");
    const inside = `${prefix}-front`;
    const outside = uniqueName("other");
    for (const bucket of [inside, outside]) expect((await api("POST", `/b/${bucket}`)).status).toBe(200);
    const token = await create({ permissions: { read: [`${prefix}-*`] } });
    expect((await api("GET", `/b/${inside}`, { token: token.value })).status).toBe(200);
    await expectError(
      await api("GET", `/b/${outside}`, { token: token.value }),
      403,
      `Token '${token.name}' doesn't have read access to bucket '${outside}'`,
    );
  });
});

describe("IP allowlist: allowed clients", () => {
  it.each([
    ["X-Forwarded-For from a local client", { "x-forwarded-for": "203.0.113.10" }],
    [
      "X-Forwarded-For via a local CF-Connecting-IP",
      { "cf-connecting-ip": "127.0.0.1", "x-forwarded-for": "203.0.113.10, 10.1.1.1" },
    ],
    ["Forwarded for= via a private peer", { "cf-connecting-ip": "10.0.0.3", forwarded: "for=203.0.113.10;proto=https" }],
    ["public CF-Connecting-IP", { "cf-connecting-ip": "203.0.113.10" }],
    ["IPv4-mapped CF-Connecting-IP", { "cf-connecting-ip": "::ffff:203.0.113.10" }],
    ["IPv6 CF-Connecting-IP inside the CIDR", { "cf-connecting-ip": "2001:db8:ffff::1" }],
    ["IPv6 in Forwarded", { forwarded: 'for="[2001:db8::7]:443"' }],
  ])("%s", async (_label, headers) => {
    const response = await api("GET", "/me", { token: t.allowlisted.value, headers });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(((await response.json()) as { name: string }).name).toBe(t.allowlisted.name);
  });

  it("an allowlisted token from reduct-py's check: 203.0.113.10 allowed, .11 refused", async () => {
    const token = await create({ permissions: { full_access: false }, ip_allowlist: ["203.0.113.10"] });
    expect((await api("GET", "/me", { token: token.value, headers: { "x-forwarded-for": "203.0.113.10" } })).status).toBe(200);
    await expectError(
      await api("GET", "/me", { token: token.value, headers: { "x-forwarded-for": "203.0.113.11" } }),
      401,
      "Token is not allowed for client IP 203.0.113.11",
    );
  });
});

describe("auth modes (secure by default)", () => {
  const unconfigured = [
    { RS_API_TOKEN: undefined, RS_DISABLE_AUTH: undefined },
    { RS_API_TOKEN: "", RS_DISABLE_AUTH: "" },
    { RS_API_TOKEN: "", RS_DISABLE_AUTH: "false" },
  ];

  it.each(unconfigured)("unconfigured %j: only /alive and /ready answer without 401", async (overrides) => {
    for (const path of ["/alive", "/ready"]) {
      for (const method of ["GET", "HEAD"]) expect((await appFetch(overrides, method, path)).status).toBe(200);
    }
    const refused: [string, string, Record<string, string>][] = [
      ["GET", "/info", {}],
      ["GET", "/list", bearer(TOKEN)],
      ["GET", "/me", bearer("anything")],
      ["GET", "/tokens", bearer(TOKEN)],
      ["POST", "/tokens/x", bearer(TOKEN)],
      ["DELETE", "/tokens/x", {}],
      ["GET", "/b/some-bucket", bearer(TOKEN)],
      ["POST", "/b/some-bucket", {}],
    ];
    for (const [method, path, headers] of refused) {
      await expectError(await appFetch(overrides, method, path, { headers }), 401, UNCONFIGURED_MESSAGE);
    }
  });

  it("disabled: /me is the synthetic full-access token, whatever the header", async () => {
    const disabled = { RS_API_TOKEN: "", RS_DISABLE_AUTH: "true" };
    for (const headers of [{}, bearer("ABCB0001"), { authorization: "Basic x" }]) {
      const response = await appFetch(disabled, "GET", "/me", { headers });
      expect(response.status).toBe(200);
      const token = (await response.json()) as Record<string, unknown>;
      expect(token).toMatchObject({
        name: "AUTHENTICATION-DISABLED",
        value: "",
        permissions: { full_access: true, read: [], write: [] },
        is_expired: false,
      });
      expect(Number.isNaN(Date.parse(token.created_at as string))).toBe(false);
    }
  });

  it("disabled: list is empty, delete is a no-op 200, stored tokens are not shown", async () => {
    const disabled = { RS_API_TOKEN: "", RS_DISABLE_AUTH: "true" };
    const list = await appFetch(disabled, "GET", "/tokens");
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ tokens: [] });
    const response = await appFetch(disabled, "DELETE", `/tokens/${t.duplicate.name}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(await exists(t.duplicate.name)).toBe(true);
  });

  it("RS_API_TOKEN wins over RS_DISABLE_AUTH=true: authentication stays on", async () => {
    const both = { RS_API_TOKEN: TOKEN, RS_DISABLE_AUTH: "true" };
    await expectError(await appFetch(both, "GET", "/me"), 401, "No bearer token in request header");
    await expectError(await appFetch(both, "GET", "/me", { headers: bearer("ABCB0001") }), 401, "Invalid token");
    const response = await appFetch(both, "GET", "/me", { headers: bearer(TOKEN) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { name: string }).name).toBe("init-token");
  });

  it("token mode: /alive and /ready need no token; everything else does", async () => {
    expect((await api("GET", "/alive", { token: null })).status).toBe(200);
    expect((await api("GET", "/ready", { token: null })).status).toBe(200);
    for (const path of ["/info", "/list", "/me", "/tokens"]) {
      await expectError(await api("GET", path, { token: null }), 401, "No bearer token in request header");
    }
  });
});
