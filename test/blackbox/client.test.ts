/** Client-level API through reduct-js (port of reduct-js test/Client.test.ts, describe "Client"). */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { QuotaType, Status } from "reduct-js";
import { assertApiError, cleanStorage, makeClient, systemBucketCount, userBuckets } from "./helpers.ts";

describe("Client", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("should get information about the server", async () => {
    await client.createBucket("bucket_1");
    const bucket = await client.createBucket("bucket_2");
    let rec = await bucket.beginWrite("entry", 1000_000n);
    await rec.write("somedata");

    rec = await bucket.beginWrite("entry", 2000_000n);
    await rec.write("somedata");

    const info = await client.getInfo();
    assert.ok(info.version >= "1.10.0", `version ${info.version}`);

    // The server's own $system bucket counts too (its records are written now), as in ReductStore.
    const system = await systemBucketCount(client);
    assert.equal(info.bucketCount, 2n + system);
    assert.ok(info.usage >= 82n, `usage ${info.usage}`);
    if (system === 0n) assert.equal(info.usage, 82n);
    assert.ok(info.uptime >= 0n);
    assert.equal(info.oldestRecord, 1000_000n);
    assert.ok(info.latestRecord >= 2000_000n, `latest ${info.latestRecord}`);
    if (system === 0n) assert.equal(info.latestRecord, 2000_000n);

    assert.equal(info.defaults.bucket.quotaSize, 0n);
    assert.equal(info.defaults.bucket.quotaType, QuotaType.NONE);
    assert.equal(info.defaults.bucket.maxBlockSize, 64000000n);
    assert.equal(info.defaults.bucket.maxBlockRecords, 1024n);
    assert.equal(info.license, undefined);
  });

  it("should get list of buckets", async () => {
    await client.createBucket("bucket_1");
    await client.createBucket("bucket_2");

    const buckets = await client.getBucketList();

    assert.ok(buckets.length >= 2);
    const names = buckets.map((bucket) => bucket.name);
    assert.ok(names.includes("bucket_1"), `list: ${names}`);
    assert.ok(names.includes("bucket_2"), `list: ${names}`);
    for (const bucket of buckets) {
      assert.equal(bucket.status, Status.READY);
    }
    const bucket1 = buckets.find((bucket) => bucket.name === "bucket_1");
    assert.deepEqual(bucket1, {
      name: "bucket_1",
      entryCount: 0n,
      size: 0n,
      oldestRecord: 0n,
      latestRecord: 0n,
      isProvisioned: false,
      status: Status.READY,
    });
  });

  it("should get bucket", async () => {
    await client.createBucket("bucket_1");

    const bucket = await client.getBucket("bucket_1");
    assert.equal(bucket.getName(), "bucket_1");
  });

  it("should get bucket with error", async () => {
    await assertApiError(client.getBucket("NOTEXIST"), 404, "Bucket 'NOTEXIST' is not found");
  });

  it("should create a bucket with default settings", async () => {
    const bucket = await client.createBucket("bucket");
    assert.deepEqual(await bucket.getSettings(), {
      maxBlockSize: 64000000n,
      maxBlockRecords: 1024n,
      quotaSize: 0n,
      quotaType: QuotaType.NONE,
    });
  });

  it("should create a bucket with custom settings", async () => {
    const bucket = await client.createBucket("bucket", {
      quotaType: QuotaType.FIFO,
      quotaSize: 1024n,
      maxBlockRecords: 1029n,
    });
    assert.deepEqual(await bucket.getSettings(), {
      maxBlockSize: 64000000n,
      maxBlockRecords: 1029n,
      quotaSize: 1024n,
      quotaType: QuotaType.FIFO,
    });
  });

  for (const quotaType of [QuotaType.NONE, QuotaType.FIFO, QuotaType.HARD]) {
    it(`should create a bucket with quota type ${QuotaType[quotaType]}`, async () => {
      const bucket = await client.createBucket("bucket", { quotaType, quotaSize: 1024n });
      const settings = await bucket.getSettings();
      assert.equal(settings.quotaType, quotaType);
      assert.equal(settings.quotaSize, 1024n);
    });
  }

  it("should create a bucket with error", async () => {
    await client.createBucket("bucket");
    await assertApiError(client.createBucket("bucket"), 409, "Bucket 'bucket' already exists");
  });

  it("should reject an invalid bucket name", async () => {
    await assertApiError(
      client.createBucket("bad.name"),
      422,
      "Bucket or entry name can contain only letters, digests and [-,_] symbols",
    );
  });

  it("should remove a bucket", async () => {
    const bucket = await client.createBucket("bucket");
    await bucket.remove();

    // After removal the bucket is gone (404) or still being deleted (409).
    await assertApiError(client.getBucket("bucket"), [404, 409]);
  });

  it("should remove a bucket with error", async () => {
    const bucket = await client.createBucket("bucket");
    await bucket.remove();

    // Removing it again is 404 (deleted) or 409 (being deleted).
    await assertApiError(bucket.remove(), [404, 409]);
  });

  it("should try to create a bucket and get when it exists", async () => {
    await client.getOrCreateBucket("bucket");
    const bucket = await client.getOrCreateBucket("bucket");
    assert.equal(bucket.getName(), "bucket");
    const names = (await userBuckets(client)).map((info) => info.name);
    assert.deepEqual(names, ["bucket"]);
  });
});
