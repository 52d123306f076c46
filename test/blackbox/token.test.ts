/**
 * Token API and authorization through reduct-js (port of reduct-js test/Token.test.ts).
 * Note: with the advertised API minor below 19, reduct-js sends the legacy flat create body.
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { Bucket } from "reduct-js";
import { assertApiError, at, cleanStorage, makeClient, systemBucketCount } from "./helpers.ts";

describe("Token", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await client.createBucket("bucket_1");
    await client.createBucket("bucket_2");
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("should create a token", async () => {
    const permissions = {
      fullAccess: true,
      read: ["bucket_1"],
      write: ["bucket_2"],
    };
    const before = Date.now();
    const token = await client.createToken("token-1", permissions);
    assert.ok(token.startsWith("token-1-"), `token value ${token}`);

    const tokenInfo = await client.getToken("token-1");
    assert.equal(tokenInfo.name, "token-1");
    assert.deepEqual(tokenInfo.permissions, permissions);
    assert.ok(tokenInfo.createdAt <= Date.now(), `createdAt ${tokenInfo.createdAt}`);
    assert.ok(tokenInfo.createdAt >= before - 60_000, `createdAt ${tokenInfo.createdAt}`);
    assert.equal(tokenInfo.isProvisioned, false);
    assert.equal(tokenInfo.isExpired, false);
    assert.equal(tokenInfo.expiresAt, undefined);
    assert.equal(tokenInfo.lastAccess, undefined);
    assert.equal(tokenInfo.ttl, null);
    assert.deepEqual(tokenInfo.ipAllowlist, []);
  });

  it("should create a token with a wildcard permission", async () => {
    const value = await client.createToken("token-wildcard", { fullAccess: false, read: ["bucket_*"], write: [] });
    const reader = makeClient(value);
    const bucket = await reader.getBucket("bucket_2");
    assert.equal(bucket.getName(), "bucket_2");
    const names = (await reader.getBucketList()).map((info) => info.name);
    assert.deepEqual(names, ["bucket_1", "bucket_2"]);
  });

  it("should not create a token twice", async () => {
    await client.createToken("token-1", { fullAccess: true });
    await assertApiError(client.createToken("token-1", { fullAccess: true }), 409, "Token 'token-1' already exists");
  });

  it("should reject an invalid permission", async () => {
    await assertApiError(
      client.createToken("token-1", { fullAccess: false, read: ["bad bucket"] }),
      422,
      "Permission can contain only bucket names or wildcard '*', got 'bad bucket'",
    );
  });

  it("should list tokens", async () => {
    let tokens = await client.getTokenList();
    assert.equal(tokens.length, 1);
    assert.equal(at(tokens, 0).name, "init-token");
    assert.equal(typeof at(tokens, 0).createdAt, "number");
    assert.ok(Number.isFinite(at(tokens, 0).createdAt));
    assert.equal(at(tokens, 0).isProvisioned, true);

    await client.createToken("token-2", { fullAccess: false });
    await client.createToken("token-1", { fullAccess: true });

    tokens = await client.getTokenList();
    assert.deepEqual(
      tokens.map((token) => token.name),
      ["init-token", "token-1", "token-2"],
    );
    assert.equal(at(tokens, 1).isProvisioned, false);
    assert.deepEqual(at(tokens, 1).permissions, { fullAccess: true, read: [], write: [] });
    assert.equal(at(tokens, 2).isProvisioned, false);
    assert.deepEqual(at(tokens, 2).permissions, { fullAccess: false, read: [], write: [] });
  });

  it("should get a token with error", async () => {
    await assertApiError(client.getToken("NOTEXIST"), 404, "Token 'NOTEXIST' doesn't exist");
  });

  it("should delete a token", async () => {
    const value = await client.createToken("token-1", { fullAccess: true });
    await client.deleteToken("token-1");

    const tokens = await client.getTokenList();
    assert.deepEqual(
      tokens.map((token) => token.name),
      ["init-token"],
    );
    await assertApiError(client.getToken("token-1"), 404, "Token 'token-1' doesn't exist");
    await assertApiError(makeClient(value).getInfo(), 401, "Invalid token");
    await assertApiError(client.deleteToken("token-1"), 404);
  });

  it("should not delete the provisioned init token", async () => {
    await assertApiError(client.deleteToken("init-token"), 409, "Can't remove provisioned token 'init-token'");
  });

  it("should provide current API token and its permissions", async () => {
    const token = await client.me();
    assert.equal(token.name, "init-token");
    assert.deepEqual(token.permissions, { fullAccess: true, read: [], write: [] });
    assert.deepEqual(token.ipAllowlist, []);
    assert.equal(token.isProvisioned, true);
  });

  it("should rotate a token", async () => {
    const oldValue = await client.createToken("token-1", { fullAccess: false, read: ["bucket_1"] });
    const newValue = await client.rotateToken("token-1");

    assert.ok(newValue.startsWith("token-1-"), `token value ${newValue}`);
    assert.notEqual(newValue, oldValue);

    await assertApiError(makeClient(oldValue).me(), 401, "Invalid token");
    const me = await makeClient(newValue).me();
    assert.equal(me.name, "token-1");
    assert.deepEqual(me.permissions, { fullAccess: false, read: ["bucket_1"], write: [] });

    await assertApiError(client.rotateToken("NOTEXIST"), 404);
  });

  it("should reject an unknown token", async () => {
    const stranger = makeClient("ABCB0001");
    await assertApiError(stranger.getInfo(), 401, "Invalid token");
    await assertApiError(stranger.getBucketList(), 401, "Invalid token");
  });

  it("should forbid everything but reading server info to a token without permissions", async () => {
    const value = await client.createToken("token-1", { fullAccess: false });
    const restricted = makeClient(value);

    const info = await restricted.getInfo();
    // /info counts every bucket, the server's own $system too (only /list filters by permission).
    assert.equal(info.bucketCount, 2n + (await systemBucketCount(client)));
    assert.deepEqual(await restricted.getBucketList(), []);
    const me = await restricted.me();
    assert.equal(me.name, "token-1");

    await assertApiError(restricted.createBucket("bucket_3"), 403, "Token 'token-1' doesn't have full access");
    await assertApiError(restricted.getBucket("bucket_1"), 403, "Token 'token-1' doesn't have read access to bucket 'bucket_1'");
    await assertApiError(restricted.getTokenList(), 403, "Token 'token-1' doesn't have full access");
    await assertApiError(
      restricted.createToken("token-2", { fullAccess: true }),
      403,
      "Token 'token-1' doesn't have full access",
    );
  });

  it("should separate read and write permissions", async () => {
    const readValue = await client.createToken("reader", { fullAccess: false, read: ["bucket_1"], write: [] });
    const writeValue = await client.createToken("writer", { fullAccess: false, read: [], write: ["bucket_1"] });

    // The writer can write but not read. reduct-js only hands out Bucket objects after a GET (which
    // needs read access), so the write-only client builds one from its own HTTP client.
    const writer = makeClient(writeValue);
    await assertApiError(writer.getBucket("bucket_1"), 403, "Token 'writer' doesn't have read access to bucket 'bucket_1'");
    const writerBucket = new Bucket(
      "bucket_1",
      (writer as unknown as { httpClient: ConstructorParameters<typeof Bucket>[1] }).httpClient,
    );
    const writeRecord = await writerBucket.beginWrite("entry", 1000_000n);
    await writeRecord.write("somedata");
    await assertApiError(
      writerBucket.beginRead("entry", 1000_000n),
      403,
      "Token 'writer' doesn't have read access to bucket 'bucket_1'",
    );

    const reader = makeClient(readValue);
    const readerBucket = await reader.getBucket("bucket_1");
    const record = await readerBucket.beginRead("entry", 1000_000n);
    assert.equal(await record.readAsString(), "somedata");
    const denied = await readerBucket.beginWrite("entry", 2000_000n);
    await assertApiError(denied.write("more"), 403, "Token 'reader' doesn't have write access to bucket 'bucket_1'");
    await assertApiError(reader.getBucket("bucket_2"), 403, "Token 'reader' doesn't have read access to bucket 'bucket_2'");
  });
});
