/**
 * Token API through the Worker: shapes, persistence of what create returns, the init token,
 * rotation and deletion taking effect at once, secrets never stored or listed, and bucket deletion
 * cleaning up permissions.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, expectError, TOKEN, uniqueName } from "../helpers/http";

const TOKEN_KEYS = [
  "created_at",
  "expires_at",
  "ip_allowlist",
  "is_expired",
  "is_provisioned",
  "last_access",
  "name",
  "permissions",
  "ttl",
  "value",
];

async function create(name: string, body: unknown): Promise<{ value: string; created_at: string }> {
  const response = await api("POST", `/tokens/${name}`, { body: JSON.stringify(body) });
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

async function getToken(name: string): Promise<Record<string, unknown>> {
  const response = await api("GET", `/tokens/${name}`);
  expect(response.status).toBe(200);
  return response.json();
}

async function me(token: string, headers: Record<string, string> = {}): Promise<Response> {
  return api("GET", "/me", { token, headers });
}

describe("POST /tokens/:name", () => {
  it("creates with the v1 flat body and GET returns exactly the 10-key token with the same created_at", async () => {
    const name = uniqueName("token");
    const response = await api("POST", `/tokens/${name}`, {
      body: JSON.stringify({ full_access: false, read: ["bucket-1"], write: ["bucket-2"] }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const created = (await response.json()) as { value: string; created_at: string };
    expect(Object.keys(created).sort()).toEqual(["created_at", "value"]);
    expect(created.value).toMatch(new RegExp(`^${name}-[0-9a-f]{32}$`));
    expect(created.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(Math.abs(Date.parse(created.created_at) - Date.now())).toBeLessThan(60_000);

    const token = await getToken(name);
    expect(Object.keys(token).sort()).toEqual(TOKEN_KEYS);
    expect(token).toEqual({
      name,
      value: "",
      created_at: created.created_at,
      permissions: { full_access: false, read: ["bucket-1"], write: ["bucket-2"] },
      is_provisioned: false,
      expires_at: null,
      ttl: null,
      last_access: null,
      ip_allowlist: [],
      is_expired: false,
    });
  });

  it("creates with the v2 body; expiry, ttl and allowlist come back as sent", async () => {
    const name = uniqueName("token");
    const expiresAt = new Date(Date.now() + 120_000).toISOString();
    const created = await create(name, {
      permissions: { full_access: false, read: ["a-*"], write: ["b"] },
      expires_at: expiresAt,
      ttl: 120000,
      ip_allowlist: ["127.0.0.1", "10.0.0.0/8"],
    });
    expect(await getToken(name)).toEqual({
      name,
      value: "",
      created_at: created.created_at,
      permissions: { full_access: false, read: ["a-*"], write: ["b"] },
      is_provisioned: false,
      expires_at: expiresAt,
      ttl: 120000,
      last_access: null,
      ip_allowlist: ["127.0.0.1", "10.0.0.0/8"],
      is_expired: false,
    });
  });

  it("normalises an expiry with an offset to UTC and keeps sub-millisecond digits", async () => {
    const name = uniqueName("token");
    await create(name, { permissions: {}, expires_at: "2999-01-01T01:00:00.123456+01:00" });
    expect((await getToken(name)).expires_at).toBe("2999-01-01T00:00:00.123456Z");
  });

  it("`{}` creates a token without permissions, which can authenticate but do nothing else", async () => {
    const name = uniqueName("token");
    const { value } = await create(name, {});
    expect((await getToken(name)).permissions).toEqual({ full_access: false, read: [], write: [] });
    const response = await me(value);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { name: string }).name).toBe(name);
    await expectError(await api("GET", "/tokens", { token: value }), 403, `Token '${name}' doesn't have full access`);
  });

  it("a created full-access token can manage tokens", async () => {
    const admin = uniqueName("admin");
    const { value } = await create(admin, { permissions: { full_access: true } });
    const other = uniqueName("token");
    const response = await api("POST", `/tokens/${other}`, { token: value, body: "{}" });
    expect(response.status).toBe(200);
    expect((await api("DELETE", `/tokens/${other}`, { token: value })).status).toBe(200);
  });

  it("the same name cannot be created twice, even concurrently", async () => {
    const name = uniqueName("token");
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => api("POST", `/tokens/${name}`, { body: '{"full_access": true}' })),
    );
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409]);
    for (const response of responses.filter((r) => r.status === 409)) {
      await expectError(response, 409, `Token '${name}' already exists`);
    }
  });
});

describe("GET /tokens", () => {
  it("lists every token sorted by name with blank values, init-token provisioned", async () => {
    const names = [uniqueName("zz-token"), uniqueName("aa-token"), uniqueName("mm-token")];
    for (const name of names) await create(name, { read: ["x"] });
    const response = await api("GET", "/tokens");
    expect(response.status).toBe(200);
    const { tokens } = (await response.json()) as { tokens: Record<string, unknown>[] };
    const listed = tokens.map((token) => token.name as string);
    expect(listed).toEqual([...listed].sort());
    for (const name of [...names, "init-token"]) expect(listed).toContain(name);
    for (const token of tokens) {
      expect(Object.keys(token).sort()).toEqual(TOKEN_KEYS);
      expect(token.value).toBe("");
    }
    expect(tokens.find((token) => token.name === "init-token")).toMatchObject({
      is_provisioned: true,
      permissions: { full_access: true, read: [], write: [] },
      ip_allowlist: [],
    });
    for (const name of names) expect(tokens.find((token) => token.name === name)?.is_provisioned).toBe(false);
  });
});

describe("the init token", () => {
  it("has a stable created_at shared by GET, the list and /me", async () => {
    const first = await getToken("init-token");
    const second = await getToken("init-token");
    expect(first).toEqual(second);
    expect(first).toMatchObject({ name: "init-token", is_provisioned: true, value: "", last_access: null });
    const meResponse = await me(TOKEN);
    expect(meResponse.status).toBe(200);
    expect(await meResponse.json()).toEqual(first);
    const { tokens } = (await (await api("GET", "/tokens")).json()) as { tokens: { name: string }[] };
    expect(tokens.find((token) => token.name === "init-token")).toEqual(first);
  });

  it("cannot be created, removed or rotated", async () => {
    await expectError(await api("POST", "/tokens/init-token", { body: "{}" }), 409, "Token 'init-token' already exists");
    await expectError(await api("DELETE", "/tokens/init-token"), 409, "Can't remove provisioned token 'init-token'");
    await expectError(await api("POST", "/tokens/init-token/rotate"), 409, "Can't rotate provisioned token 'init-token'");
    expect((await me(TOKEN)).status).toBe(200);
  });
});

describe("rotation", () => {
  it("returns a new value, invalidates the old one at once, resets created_at and last_access", async () => {
    const name = uniqueName("token");
    const created = await create(name, { permissions: { read: ["x"] } });
    // Warm up: the old value works repeatedly before the rotation.
    for (let i = 0; i < 3; i += 1) expect((await me(created.value)).status).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, 5));
    const response = await api("POST", `/tokens/${name}/rotate`, { body: "{}" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const rotated = (await response.json()) as { value: string; created_at: string };
    expect(Object.keys(rotated).sort()).toEqual(["created_at", "value"]);
    expect(rotated.value).toMatch(new RegExp(`^${name}-[0-9a-f]{32}$`));
    expect(rotated.value).not.toBe(created.value);
    expect(Date.parse(rotated.created_at)).toBeGreaterThan(Date.parse(created.created_at));

    await expectError(await me(created.value), 401, "Invalid token");
    const fresh = await me(rotated.value);
    expect(fresh.status).toBe(200);
    expect(((await fresh.json()) as { name: string }).name).toBe(name);

    const token = await getToken(name);
    expect(token.created_at).toBe(rotated.created_at);
    expect(token.permissions).toEqual({ full_access: false, read: ["x"], write: [] });
    expect(Date.parse(token.last_access as string)).toBeGreaterThanOrEqual(Date.parse(rotated.created_at));
  });

  it("works without a body (as reduct-py sends it) and twice in a row", async () => {
    const name = uniqueName("token");
    const created = await create(name, {});
    const first = (await (await api("POST", `/tokens/${name}/rotate`)).json()) as { value: string };
    const second = (await (await api("POST", `/tokens/${name}/rotate`)).json()) as { value: string };
    expect(new Set([created.value, first.value, second.value]).size).toBe(3);
    await expectError(await me(created.value), 401, "Invalid token");
    await expectError(await me(first.value), 401, "Invalid token");
    expect((await me(second.value)).status).toBe(200);
  });
});

describe("deletion", () => {
  it("removes the token from the list and its value stops working at once", async () => {
    const name = uniqueName("token");
    const { value } = await create(name, { full_access: true });
    expect((await me(value)).status).toBe(200);
    expect((await api("DELETE", `/tokens/${name}`)).status).toBe(200);
    await expectError(await me(value), 401, "Invalid token");
    await expectError(await api("GET", `/tokens/${name}`), 404, `Token '${name}' doesn't exist`);
    const { tokens } = (await (await api("GET", "/tokens")).json()) as { tokens: { name: string }[] };
    expect(tokens.map((token) => token.name)).not.toContain(name);
  });

  it("re-creating a deleted name gives a new value; the old one stays invalid", async () => {
    const name = uniqueName("token");
    const old = await create(name, { full_access: true });
    expect((await api("DELETE", `/tokens/${name}`)).status).toBe(200);
    const renewed = await create(name, { read: ["x"] });
    await expectError(await me(old.value), 401, "Invalid token");
    expect((await me(renewed.value)).status).toBe(200);
    // The old value's full access did not come back either.
    await expectError(await api("GET", "/tokens", { token: renewed.value }), 403, `Token '${name}' doesn't have full access`);
  });
});

describe("last_access", () => {
  it("is null until the token is used, then set by authentication", async () => {
    const name = uniqueName("token");
    const created = await create(name, { read: ["x"] });
    expect((await getToken(name)).last_access).toBeNull();
    const before = Date.now();
    expect((await me(created.value)).status).toBe(200);
    const lastAccess = (await getToken(name)).last_access as string;
    expect(lastAccess).toMatch(/Z$/);
    expect(Date.parse(lastAccess)).toBeGreaterThanOrEqual(before - 5);
    expect(Date.parse(lastAccess)).toBeLessThanOrEqual(Date.now() + 5);
    // Within the throttle interval (one minute for a token without TTL) it is not rewritten.
    expect((await me(created.value)).status).toBe(200);
    expect((await getToken(name)).last_access).toBe(lastAccess);
  });
});

describe("secrets at rest", () => {
  it("D1 holds no token value, nor its random part, nor RS_API_TOKEN; only salted hashes", async () => {
    const values: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const name = uniqueName("secret");
      const created = await create(name, { permissions: { full_access: i === 0, read: ["a"] }, ttl: 3600 });
      values.push(created.value);
      expect((await me(created.value)).status).toBe(200); // also writes last_access
      if (i === 2) {
        const rotated = (await (await api("POST", `/tokens/${name}/rotate`)).json()) as { value: string };
        values.push(rotated.value);
      }
    }
    expect((await getToken("init-token")).name).toBe("init-token");

    const { results } = await env.DB.prepare("SELECT * FROM tokens").all<Record<string, unknown>>();
    expect(results.length).toBeGreaterThanOrEqual(4);
    const dump = JSON.stringify(results);
    for (const value of [...values, TOKEN]) {
      expect(dump).not.toContain(value);
      expect(dump).not.toContain(value.slice(-32));
    }
    for (const row of results) {
      expect(row.hash).toMatch(/^sha256:[0-9a-f]{32}:[0-9a-f]{64}$/);
      if (row.name === "init-token") expect(row.lookup).toBeNull();
      else expect(row.lookup).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it("no response of list or get carries a secret", async () => {
    const name = uniqueName("secret");
    const { value } = await create(name, { full_access: true });
    const list = await (await api("GET", "/tokens")).text();
    const one = await (await api("GET", `/tokens/${name}`)).text();
    const self = await (await me(value)).text();
    for (const text of [list, one, self]) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(TOKEN);
    }
  });
});

describe("bucket deletion and token permissions", () => {
  it("deleting a bucket removes it from read/write lists; re-creating it does not bring access back", async () => {
    const bucket = uniqueName("bucket");
    const keep = uniqueName("bucket");
    const name = uniqueName("token");
    expect((await api("POST", `/b/${bucket}`)).status).toBe(200);
    const { value } = await create(name, { permissions: { read: [bucket, keep, "cam-*"], write: [bucket] } });
    expect((await api("GET", `/b/${bucket}`, { token: value })).status).toBe(200);

    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    expect((await getToken(name)).permissions).toEqual({ full_access: false, read: [keep, "cam-*"], write: [] });

    expect((await api("POST", `/b/${bucket}`)).status).toBe(200);
    await expectError(
      await api("GET", `/b/${bucket}`, { token: value }),
      403,
      `Token '${name}' doesn't have read access to bucket '${bucket}'`,
    );
    expect((await getToken(name)).permissions).toEqual({ full_access: false, read: [keep, "cam-*"], write: [] });
  });
});
