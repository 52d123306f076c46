// Left out: tokens with `$system` read permission — the README lists the $system bucket as unsupported.
/**
 * Token API v2 through reduct-js (port of reduct-js test/Token.test.ts cases gated on API ≥ 1.19).
 * The server advertises 1.21, so `createToken` sends the v2 body
 * `{permissions, expires_at, ttl, ip_allowlist}`; token.test.ts covers the rest of the token API.
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { assertApiError, cleanStorage, makeClient } from "./helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Token v2", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await client.createBucket("bucket_1");
    await client.createBucket("bucket_2");
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("should create a token with ttl, expiration and IP allowlist", async () => {
    const permissions = { fullAccess: false, read: ["bucket_1"], write: ["bucket_2"] };
    const expiresAt = Date.now() + 2 * 60 * 1000;
    const before = Date.now();
    const value = await client.createToken("token-v2", {
      permissions,
      ttl: 120000,
      expiresAt,
      ipAllowlist: ["127.0.0.1", "10.0.0.0/8"],
    });
    assert.ok(value.startsWith("token-v2-"), `token value ${value}`);

    const token = await client.getToken("token-v2");
    assert.equal(token.name, "token-v2");
    assert.deepEqual(token.permissions, permissions);
    assert.equal(token.ttl, 120000);
    assert.equal(token.expiresAt, expiresAt);
    assert.deepEqual(token.ipAllowlist, ["127.0.0.1", "10.0.0.0/8"]);
    assert.equal(token.isExpired, false);
    assert.equal(token.isProvisioned, false);
    assert.ok(token.createdAt >= before - 60_000 && token.createdAt <= Date.now(), `createdAt ${token.createdAt}`);

    const listed = (await client.getTokenList()).find((info) => info.name === "token-v2");
    assert.ok(listed, "token-v2 is listed");
    assert.equal(listed.ttl, 120000);
    assert.equal(listed.expiresAt, expiresAt);
    assert.deepEqual(listed.ipAllowlist, ["127.0.0.1", "10.0.0.0/8"]);
  });

  it("should create a token with only permissions in the v2 body", async () => {
    const value = await client.createToken("token-1", { permissions: { fullAccess: true } });
    assert.ok(value.startsWith("token-1-"), `token value ${value}`);

    const token = await client.getToken("token-1");
    assert.deepEqual(token.permissions, { fullAccess: true, read: [], write: [] });
    assert.equal(token.expiresAt, undefined);
    assert.equal(token.ttl, null);
    assert.deepEqual(token.ipAllowlist, []);
    assert.equal(token.isExpired, false);

    const me = await makeClient(value).me();
    assert.equal(me.name, "token-1");
  });

  it("should reject invalid ttl and expiration", async () => {
    await assertApiError(
      client.createToken("token-1", { permissions: { fullAccess: true }, ttl: 0 }),
      422,
      "Token TTL must be greater than zero",
    );
    await assertApiError(
      client.createToken("token-1", { permissions: { fullAccess: true }, expiresAt: Date.now() - 60_000 }),
      422,
      "Token expiration date must not be in the past",
    );
    await assertApiError(client.getToken("token-1"), 404, "Token 'token-1' doesn't exist");
  });

  it("should accept a token only from allowed IPs", async () => {
    const allowed = await client.createToken("allowed", {
      permissions: { fullAccess: false, read: ["bucket_1"] },
      ipAllowlist: ["127.0.0.1", "::1"],
    });
    const denied = await client.createToken("denied", {
      permissions: { fullAccess: false, read: ["bucket_1"] },
      ipAllowlist: ["10.0.0.0/8"],
    });

    const me = await makeClient(allowed).me();
    assert.equal(me.name, "allowed");
    assert.deepEqual(me.ipAllowlist, ["127.0.0.1", "::1"]);
    const bucket = await makeClient(allowed).getBucket("bucket_1");
    assert.equal(bucket.getName(), "bucket_1");

    await assertApiError(makeClient(denied).me(), 401);
    await assertApiError(makeClient(denied).getBucket("bucket_1"), 401);
  });

  it("should expire a token at its expiration date and refuse to rotate it", async () => {
    const value = await client.createToken("short", {
      permissions: { fullAccess: false, read: ["bucket_1"] },
      expiresAt: Date.now() + 1_000,
    });
    assert.equal((await makeClient(value).me()).name, "short");

    await sleep(1_500);
    await assertApiError(makeClient(value).me(), 401);
    const token = await client.getToken("short");
    assert.equal(token.isExpired, true);
    await assertApiError(client.rotateToken("short"), 422, "Can't rotate expired token 'short'");
  });

  it("should expire a token that was not used within its ttl", async () => {
    const value = await client.createToken("idle", { permissions: { fullAccess: false, read: ["bucket_1"] }, ttl: 1 });
    assert.equal((await makeClient(value).me()).name, "idle");

    await sleep(1_500);
    await assertApiError(makeClient(value).me(), 401);
    assert.equal((await client.getToken("idle")).isExpired, true);
  });

  it("should rotate a token and keep its settings", async () => {
    const expiresAt = Date.now() + 10 * 60 * 1000;
    const oldValue = await client.createToken("token-1", {
      permissions: { fullAccess: false, read: ["bucket_1"], write: [] },
      ttl: 3600,
      expiresAt,
      ipAllowlist: ["127.0.0.1", "::1"],
    });
    const before = await client.getToken("token-1");

    const newValue = await client.rotateToken("token-1");
    assert.ok(newValue.startsWith("token-1-"), `token value ${newValue}`);
    assert.notEqual(newValue, oldValue);

    await assertApiError(makeClient(oldValue).me(), 401, "Invalid token");
    const me = await makeClient(newValue).me();
    assert.equal(me.name, "token-1");

    const after = await client.getToken("token-1");
    assert.deepEqual(after.permissions, { fullAccess: false, read: ["bucket_1"], write: [] });
    assert.equal(after.ttl, 3600);
    assert.equal(after.expiresAt, expiresAt);
    assert.deepEqual(after.ipAllowlist, ["127.0.0.1", "::1"]);
    assert.equal(after.isExpired, false);
    assert.ok(after.createdAt >= before.createdAt, "created_at is reset to the rotation time");
  });

  it("should not rotate the provisioned init token or a missing one", async () => {
    await assertApiError(client.rotateToken("init-token"), 409, "Can't rotate provisioned token 'init-token'");
    await assertApiError(client.rotateToken("NOTEXIST"), 404, "Token 'NOTEXIST' doesn't exist");
  });
});
