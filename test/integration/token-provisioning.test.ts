/**
 * Tokens from RS_TOKEN_<ID>_*: written to D1 at an isolate's first API request as provisioned
 * tokens that authenticate with the operator's value (any string), shown by the token API with
 * is_provisioned, refused by create/delete/rotate with ReductStore's 409 strings; a changed value
 * replaces the old one, a removed group un-provisions the token, an invalid group is skipped with
 * one error line and leaves the token as it was. Table-driven over statuses and error strings.
 *
 * Each test gets its own environment (a new set of RS_TOKEN_* variables is a new isolate start for
 * the provisioning, which runs once per set), and applying an environment un-provisions the tokens
 * of other tests: each test asserts only on tokens it made.
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { provisionedTokens } from "../../src/api/token-provisioning";
import { applyProvisionedTokens } from "../../src/auth/provisioned-tokens";
import { toHex, verifyTokenHash } from "../../src/auth/secrets";
import { ensureInitToken, getTokenRow } from "../../src/auth/token-store";
import { apiWithEnv, expectError, TOKEN, uniqueName } from "../helpers/http";

const init = { authorization: `Bearer ${TOKEN}` };
const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

/** One group `RS_TOKEN_<id>_*` with these fields. */
function group(id: string, fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([field, value]) => [`RS_TOKEN_${id}_${field}`, value]));
}

/** A value no generated token has: spaces, punctuation, no `-<32 hex>` tail. */
function operatorValue(): string {
  return `Operator's secret #${crypto.randomUUID()} !`;
}

function silenceErrors() {
  return vi.spyOn(console, "error").mockImplementation(() => {});
}

/** The `msg` of every JSON error line logged through the spy. */
function loggedMessages(spy: ReturnType<typeof silenceErrors>): string[] {
  return spy.mock.calls.map(([line]) => (JSON.parse(String(line)) as { msg: string }).msg);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("provisionedTokens (parsing)", () => {
  it("reads every group: value as given, lists split on commas and trimmed, expiry canonical", () => {
    expect(
      provisionedTokens({
        ...group("A", { NAME: "alpha", VALUE: " spaced value ", FULL_ACCESS: "TRUE" }),
        ...group("B", { NAME: "beta", VALUE: "b", READ: "bucket-1, cam-*,,$system", WRITE: "bucket-1" }),
        ...group("C", { NAME: "gamma", VALUE: "c", EXPIRES_AT: "2030-01-01T01:00:00+01:00" }),
        RS_TOKEN_D_VALUE: "a value without a name is no group",
      }),
    ).toEqual({
      tokens: [
        { name: "alpha", value: " spaced value ", permissions: { full_access: true, read: [], write: [] }, expiresAt: null },
        {
          name: "beta",
          value: "b",
          permissions: { full_access: false, read: ["bucket-1", "cam-*", "$system"], write: ["bucket-1"] },
          expiresAt: null,
        },
        {
          name: "gamma",
          value: "c",
          permissions: { full_access: false, read: [], write: [] },
          expiresAt: "2030-01-01T00:00:00Z",
        },
      ],
      skipped: [],
    });
  });

  it.each([
    ["no value", { NAME: "x" }, "RS_TOKEN_X_VALUE is not set"],
    ["an empty value", { NAME: "x", VALUE: "" }, "RS_TOKEN_X_VALUE is not set"],
    ["a name with a space", { NAME: "a b", VALUE: "v" }, "Token name can contain only visible ASCII characters without spaces"],
    ["the init token's name", { NAME: "init-token", VALUE: "v" }, "the name 'init-token' is the init token's"],
    [
      "a bad FULL_ACCESS",
      { NAME: "x", VALUE: "v", FULL_ACCESS: "yes" },
      "Invalid value of RS_TOKEN_X_FULL_ACCESS: 'yes' is not true or false",
    ],
    [
      "a bad READ item",
      { NAME: "x", VALUE: "v", READ: "ok,a/b" },
      "Permission can contain only bucket names or wildcard '*', got 'a/b'",
    ],
    [
      "a bad WRITE item",
      { NAME: "x", VALUE: "v", WRITE: "b c" },
      "Permission can contain only bucket names or wildcard '*', got 'b c'",
    ],
    [
      "a bad EXPIRES_AT",
      { NAME: "x", VALUE: "v", EXPIRES_AT: "tomorrow" },
      "Invalid value of RS_TOKEN_X_EXPIRES_AT: 'tomorrow' is not an RFC 3339 date",
    ],
  ] as const)("skips a group with %s, with one error line", (_what, fields, reason) => {
    const errors = silenceErrors();
    const name = fields.NAME;
    expect(provisionedTokens(group("X", fields))).toEqual({ tokens: [], skipped: [name] });
    expect(loggedMessages(errors)).toEqual([`Failed to provision token '${name}': ${reason}`]);
  });

  it("skips the second group that names a token already named", () => {
    const errors = silenceErrors();
    const parsed = provisionedTokens({
      ...group("A", { NAME: "same", VALUE: "1" }),
      ...group("B", { NAME: "same", VALUE: "2" }),
    });
    expect(parsed.tokens.map(({ name, value }) => ({ name, value }))).toEqual([{ name: "same", value: "1" }]);
    expect(parsed.skipped).toEqual(["same"]);
    expect(loggedMessages(errors)).toEqual(["Failed to provision token 'same': RS_TOKEN_A_NAME names it too"]);
  });

  it("never logs a value", () => {
    const errors = silenceErrors();
    const value = operatorValue();
    provisionedTokens(group("X", { NAME: "x", VALUE: value, READ: "a/b" }));
    expect(errors.mock.calls.join("\n")).not.toContain(value);
  });
});

/** A fresh provisioned token `name` with `value`, and the environment that provisions it. */
function provisioned(fields: Record<string, string> = {}) {
  const name = uniqueName("prov-token");
  const value = operatorValue();
  return { name, value, vars: group("P", { NAME: name, VALUE: value, ...fields }) };
}

describe("a provisioned token through the Worker", () => {
  it("authenticates with its value from the first request, with the environment's permissions", async () => {
    const { name, value, vars } = provisioned({ READ: "bucket-r", WRITE: "bucket-w,cam-*" });
    const me = await apiWithEnv(vars, "GET", "/me", bearer(value));
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      name,
      value: "",
      is_provisioned: true,
      permissions: { full_access: false, read: ["bucket-r"], write: ["bucket-w", "cam-*"] },
      expires_at: null,
      ttl: null,
      ip_allowlist: [],
      is_expired: false,
    });
    // Not full access: the token API is out of reach.
    await expectError(await apiWithEnv(vars, "GET", "/tokens", bearer(value)), 403, `Token '${name}' doesn't have full access`);
  });

  it("FULL_ACCESS=true grants full access", async () => {
    const { value, vars } = provisioned({ FULL_ACCESS: "true" });
    const response = await apiWithEnv(vars, "GET", "/tokens", bearer(value));
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  });

  it("is listed and shown with is_provisioned and no value", async () => {
    const { name, vars } = provisioned({ READ: "bucket-r" });
    const list = await apiWithEnv(vars, "GET", "/tokens", init);
    const { tokens } = (await list.json()) as { tokens: { name: string; is_provisioned: boolean; value: string }[] };
    const listed = tokens.find((token) => token.name === name);
    expect(listed).toMatchObject({ name, is_provisioned: true, value: "" });
    const get = await apiWithEnv(vars, "GET", `/tokens/${name}`, init);
    expect(get.status).toBe(200);
    const shown = (await get.json()) as Record<string, unknown>;
    expect(Object.keys(shown).sort()).toEqual([
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
    ]);
    expect(shown).toEqual(listed);
    expect(shown).toMatchObject({ is_provisioned: true, permissions: { full_access: false, read: ["bucket-r"], write: [] } });
  });

  it.each([
    ["DELETE", "/tokens/{n}", 409, "Can't remove provisioned token '{n}'"],
    ["POST", "/tokens/{n}/rotate", 409, "Can't rotate provisioned token '{n}'"],
    ["POST", "/tokens/{n}", 409, "Token '{n}' already exists"],
  ] as const)("%s %s → %i, and the value still works", async (method, template, status, message) => {
    const { name, value, vars } = provisioned();
    const fill = (text: string) => text.replaceAll("{n}", name);
    const body = method === "POST" && !template.endsWith("rotate") ? '{"full_access": true}' : undefined;
    const headers = { ...init, "content-type": "application/json" };
    await expectError(await apiWithEnv(vars, method, fill(template), headers, body), status, fill(message));
    const me = await apiWithEnv(vars, "GET", "/me", bearer(value));
    expect(me.status).toBe(200);
    expect(((await me.json()) as { is_provisioned: boolean }).is_provisioned).toBe(true);
  });

  it.each([
    ["the last character changed", (value: string) => `${value.slice(0, -1)}?`],
    ["a prefix", (value: string) => value.slice(0, -1)],
    ["one character more", (value: string) => `${value}x`],
    ["another case", (value: string) => value.toUpperCase()],
    ["a space in front", (value: string) => ` ${value}`],
  ])("a wrong value (%s) → 401 `Invalid token`", async (_what, wrong) => {
    const { value, vars } = provisioned();
    await expectError(await apiWithEnv(vars, "GET", "/me", bearer(wrong(value))), 401, "Invalid token");
  });

  it("is checked against a salted hash in constant time: D1 holds no column with the value", async () => {
    const { name, value, vars } = provisioned();
    const compare = vi.spyOn(crypto.subtle, "timingSafeEqual");
    const me = await apiWithEnv(vars, "GET", "/me", bearer(value));
    expect(me.status).toBe(200);
    await me.arrayBuffer();
    // Every comparison takes fixed 32-byte digests, whatever the value's length...
    const lengths = compare.mock.calls.map(([a, b]) => [(a as ArrayBufferView).byteLength, (b as ArrayBufferView).byteLength]);
    expect(lengths.length).toBeGreaterThan(0);
    expect(lengths.every(([a, b]) => a === 32 && b === 32)).toBe(true);
    // ...and one of them is against the row's salted hash (not a string comparison of the value).
    const stored = String((await getTokenRow(env.DB, name))?.hash).split(":")[2];
    const hex = (bytes: unknown) => toHex(new Uint8Array((bytes as ArrayBufferView).buffer as ArrayBuffer));
    expect(compare.mock.calls.some(([a, b]) => hex(a) === stored || hex(b) === stored)).toBe(true);

    const row = await env.DB.prepare(
      `SELECT name, lookup, hash, created_at, is_provisioned, full_access, read_buckets, write_buckets, expires_at, ttl,
         last_access, ip_allowlist FROM tokens WHERE name = ?1`,
    )
      .bind(name)
      .first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    expect(Object.values(row ?? {}).some((column) => String(column).includes(value))).toBe(false);
    expect(await verifyTokenHash(value, String(row?.hash))).toBe(true);
  });

  it("an EXPIRES_AT in the past provisions an expired token: 401 `Token has expired`", async () => {
    const { name, value, vars } = provisioned({ EXPIRES_AT: "2020-01-01T00:00:00Z" });
    await expectError(await apiWithEnv(vars, "GET", "/me", bearer(value)), 401, "Token has expired");
    const shown = await apiWithEnv(vars, "GET", `/tokens/${name}`, init);
    expect(await shown.json()).toMatchObject({ expires_at: "2020-01-01T00:00:00Z", is_expired: true, is_provisioned: true });
  });

  it("takes over a token made through the API: its generated value stops working", async () => {
    const name = uniqueName("prov-token");
    const headers = { ...init, "content-type": "application/json" };
    const created = await apiWithEnv(
      {},
      "POST",
      `/tokens/${name}`,
      headers,
      '{"full_access": false, "ip_allowlist": ["10.0.0.1"]}',
    );
    expect(created.status).toBe(200);
    const generated = ((await created.json()) as { value: string }).value;
    const value = operatorValue();
    const vars = group("P", { NAME: name, VALUE: value, READ: "bucket-r" });
    await expectError(await apiWithEnv(vars, "GET", "/me", bearer(generated)), 401, "Invalid token");
    const me = await apiWithEnv(vars, "GET", "/me", bearer(value));
    expect(me.status).toBe(200);
    // TTL and IP allowlist are not provisioned: the environment's token has none.
    expect(await me.json()).toMatchObject({ name, is_provisioned: true, ip_allowlist: [], ttl: null });
  });

  it("with authentication disabled: nothing is provisioned, one error line per group", async () => {
    const errors = silenceErrors();
    const { name, value, vars } = provisioned();
    const disabled = { ...vars, RS_API_TOKEN: undefined, RS_DISABLE_AUTH: "true" };
    for (let i = 0; i < 2; i++) {
      const response = await apiWithEnv(disabled, "GET", "/me", bearer(value));
      expect(response.status).toBe(200);
      expect(((await response.json()) as { name: string }).name).toBe("AUTHENTICATION-DISABLED");
    }
    expect(loggedMessages(errors).filter((msg) => msg.includes(name))).toEqual([
      `Failed to provision token '${name}': Authentication is disabled`,
    ]);
    expect(await getTokenRow(env.DB, name)).toBeNull();
  });
});

describe("provisioned tokens across isolate starts", () => {
  /** Another start with the same groups: an extra variable makes it a new set, nothing else changes. */
  const restart = (vars: Record<string, string>, n: number) => ({ ...vars, [`RS_TOKEN_RESTART${n}_READ`]: "x" });

  it("a start with the same variables writes nothing: created_at and hash stay", async () => {
    const { name, value, vars } = provisioned();
    expect((await apiWithEnv(vars, "GET", "/me", bearer(value))).status).toBe(200);
    const first = await getTokenRow(env.DB, name);
    const me = await apiWithEnv(restart(vars, 1), "GET", "/me", bearer(value));
    expect(me.status).toBe(200);
    await me.arrayBuffer();
    const second = await getTokenRow(env.DB, name);
    expect(second?.hash).toBe(first?.hash);
    expect(second?.created_at).toBe(first?.created_at);
  });

  it("a changed VALUE replaces the old one at the next start, with a new created_at", async () => {
    const { name, value, vars } = provisioned();
    const before = await apiWithEnv(vars, "GET", `/tokens/${name}`, init);
    const createdBefore = ((await before.json()) as { created_at: string }).created_at;
    expect((await apiWithEnv(vars, "GET", "/me", bearer(value))).status).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, 5));
    const changed = operatorValue();
    const next = { ...vars, RS_TOKEN_P_VALUE: changed };
    await expectError(await apiWithEnv(next, "GET", "/me", bearer(value)), 401, "Invalid token");
    const me = await apiWithEnv(next, "GET", "/me", bearer(changed));
    expect(me.status).toBe(200);
    const createdAfter = ((await me.json()) as { created_at: string }).created_at;
    expect(Date.parse(createdAfter)).toBeGreaterThan(Date.parse(createdBefore));
  });

  it("changed permissions apply at the next start and keep created_at", async () => {
    const { name, value, vars } = provisioned({ READ: "bucket-a" });
    const before = (await (await apiWithEnv(vars, "GET", `/tokens/${name}`, init)).json()) as { created_at: string };
    const me = await apiWithEnv(
      { ...vars, RS_TOKEN_P_READ: "bucket-b", RS_TOKEN_P_FULL_ACCESS: "true" },
      "GET",
      "/me",
      bearer(value),
    );
    expect(await me.json()).toMatchObject({
      created_at: before.created_at,
      permissions: { full_access: true, read: ["bucket-b"], write: [] },
    });
  });

  it("a removed group un-provisions its token: it can then be deleted", async () => {
    const { name, value, vars } = provisioned();
    expect((await apiWithEnv(vars, "GET", "/me", bearer(value))).status).toBe(200);
    const without = group("OTHER", { NAME: uniqueName("prov-other"), VALUE: operatorValue() });
    const shown = await apiWithEnv(without, "GET", `/tokens/${name}`, init);
    expect(await shown.json()).toMatchObject({ name, is_provisioned: false });
    // As in ReductStore, the value keeps working until the token is deleted or rotated.
    expect((await apiWithEnv(without, "GET", "/me", bearer(value))).status).toBe(200);
    const deleted = await apiWithEnv(without, "DELETE", `/tokens/${name}`, init);
    expect(deleted.status).toBe(200);
    await expectError(await apiWithEnv(without, "GET", "/me", bearer(value)), 401, "Invalid token");
  });

  it("no groups at all: provisioned tokens are un-provisioned, the init token is not", async () => {
    const { name, value, vars } = provisioned();
    expect((await apiWithEnv(vars, "GET", "/me", bearer(value))).status).toBe(200);
    await ensureInitToken(env.DB, TOKEN);
    await applyProvisionedTokens(env.DB, []);
    expect((await getTokenRow(env.DB, name))?.is_provisioned).toBe(0);
    const initRow = await getTokenRow(env.DB, "init-token");
    expect(initRow?.is_provisioned).toBe(1);
  });

  it("a group that turned invalid leaves its token as it was, with one error line", async () => {
    const { name, value, vars } = provisioned({ READ: "bucket-a" });
    expect((await apiWithEnv(vars, "GET", "/me", bearer(value))).status).toBe(200);
    const errors = silenceErrors();
    const broken = { ...vars, RS_TOKEN_P_READ: "bucket-a,not/valid" };
    for (let i = 0; i < 2; i++) {
      const me = await apiWithEnv(broken, "GET", "/me", bearer(value));
      expect(await me.json()).toMatchObject({ is_provisioned: true, permissions: { read: ["bucket-a"] } });
    }
    expect(loggedMessages(errors).filter((msg) => msg.includes(name))).toEqual([
      `Failed to provision token '${name}': Permission can contain only bucket names or wildcard '*', got 'not/valid'`,
    ]);
  });

  it("a value that is the init token's (RS_API_TOKEN) is refused with one error line", async () => {
    const name = uniqueName("prov-token");
    const vars = group("R", { NAME: name, VALUE: TOKEN, FULL_ACCESS: "true" });
    const errors = silenceErrors();
    const me = await apiWithEnv(vars, "GET", "/me", bearer(TOKEN));
    expect(((await me.json()) as { name: string }).name).toBe("init-token");
    expect(await getTokenRow(env.DB, name)).toBeNull();
    expect(loggedMessages(errors)).toContain(`Failed to provision token '${name}': its value is the value of another token`);
  });

  it("a value that is already another token's is refused with one error line", async () => {
    const first = provisioned();
    const second = uniqueName("prov-token");
    const vars = { ...first.vars, ...group("Q", { NAME: second, VALUE: first.value }) };
    const errors = silenceErrors();
    const me = await apiWithEnv(vars, "GET", "/me", bearer(first.value));
    expect(((await me.json()) as { name: string }).name).toBe(first.name);
    expect(await getTokenRow(env.DB, second)).toBeNull();
    expect(loggedMessages(errors)).toContain(`Failed to provision token '${second}': its value is the value of another token`);
  });
});
