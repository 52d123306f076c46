/**
 * Bucket and entry management through reduct-js (port of reduct-js test/Bucket.test.ts: "general",
 * "remove" and "rename"; records are in records.test.ts).
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { QuotaType, Status } from "reduct-js";
import { assertApiError, at, cleanStorage, createFixtureBucket, makeClient, userBuckets } from "./helpers.ts";

describe("Bucket", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  describe("general", () => {
    it("should get info about bucket", async () => {
      const bucket = await client.getBucket("bucket");
      const info = await bucket.getInfo();

      assert.deepEqual(info, {
        name: "bucket",
        size: 217n,
        entryCount: 2n,
        oldestRecord: 1000_000n,
        latestRecord: 4000_000n,
        isProvisioned: false,
        status: Status.READY,
      });
    });

    it("should list the bucket with the same info", async () => {
      const buckets = await userBuckets(client);
      assert.deepEqual(buckets, [
        {
          name: "bucket",
          size: 217n,
          entryCount: 2n,
          oldestRecord: 1000_000n,
          latestRecord: 4000_000n,
          isProvisioned: false,
          status: Status.READY,
        },
      ]);
    });

    it("should get/set settings", async () => {
      const bucket = await client.getBucket("bucket");
      assert.deepEqual(await bucket.getSettings(), {
        maxBlockSize: 64000000n,
        maxBlockRecords: 256n,
        quotaSize: 0n,
        quotaType: QuotaType.NONE,
      });

      await bucket.setSettings({
        maxBlockRecords: 1024n,
        quotaType: QuotaType.FIFO,
      });
      assert.deepEqual(await bucket.getSettings(), {
        maxBlockSize: 64000000n,
        maxBlockRecords: 1024n,
        quotaSize: 0n,
        quotaType: QuotaType.FIFO,
      });

      await bucket.setSettings({ quotaSize: 1000_000n });
      assert.deepEqual(await bucket.getSettings(), {
        maxBlockSize: 64000000n,
        maxBlockRecords: 1024n,
        quotaSize: 1000_000n,
        quotaType: QuotaType.FIFO,
      });
    });

    it("should get list of entries", async () => {
      const bucket = await client.getBucket("bucket");
      const entries = await bucket.getEntryList();

      assert.equal(entries.length, 2);
      assert.equal(at(entries, 0).status, Status.READY);
      assert.equal(at(entries, 1).status, Status.READY);
      assert.deepEqual(entries, [
        {
          blockCount: 1n,
          latestRecord: 1000000n,
          name: "entry-1",
          oldestRecord: 1000000n,
          recordCount: 1n,
          size: 90n,
          status: Status.READY,
        },
        {
          blockCount: 1n,
          latestRecord: 4000000n,
          name: "entry-2",
          oldestRecord: 2000000n,
          recordCount: 3n,
          size: 127n,
          status: Status.READY,
        },
      ]);
    });
  });

  describe("remove", () => {
    it("should remove entry", async () => {
      const bucket = await client.getBucket("bucket");
      await bucket.removeEntry("entry-1");

      // After removal the entry is gone (404) or still being deleted (409).
      await assertApiError(bucket.beginRead("entry-1"), [404, 409]);
      await assertApiError(bucket.beginRead("entry-1", 1000_000n), [404, 409]);
      const left = (await bucket.getEntryList()).filter((entry) => entry.status === Status.READY).map((entry) => entry.name);
      assert.deepEqual(left, ["entry-2"]);
    });

    it("should remove an unknown entry with error", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.removeEntry("entry-404"), 404);
    });
  });

  describe("rename", () => {
    it("should rename entry", async () => {
      const bucket = await client.getBucket("bucket");
      await bucket.renameEntry("entry-1", "entry-1-renamed");

      await assertApiError(bucket.beginRead("entry-1"), 404);
      const record = await bucket.beginRead("entry-1-renamed");
      assert.equal(record.size, 9n);
      assert.equal(record.time, 1000_000n);
      assert.equal(record.last, true);
      assert.equal(await record.readAsString(), "somedata1");
      assert.deepEqual(record.labels, { label1: "label1", label2: "100", label3: "true" });

      const names = (await bucket.getEntryList()).map((entry) => entry.name);
      assert.deepEqual(names, ["entry-1-renamed", "entry-2"]);
    });

    it("should not rename an entry onto an existing one", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.renameEntry("entry-1", "entry-2"), 409, "Entry 'entry-2' already exists in bucket 'bucket'");
    });

    it("should rename bucket", async () => {
      const bucket = await client.getBucket("bucket");
      await bucket.rename("bucket-renamed");
      assert.equal(bucket.getName(), "bucket-renamed");

      await assertApiError(client.getBucket("bucket"), 404, "Bucket 'bucket' is not found");
      const renamed = await client.getBucket("bucket-renamed");
      assert.equal(renamed.getName(), "bucket-renamed");
      const info = await renamed.getInfo();
      assert.equal(info.name, "bucket-renamed");
      assert.equal(info.size, 217n);
      const record = await renamed.beginRead("entry-2", 3000_000n);
      assert.equal(await record.readAsString(), "somedata3");
    });

    it("should not rename a bucket onto an existing one", async () => {
      await client.createBucket("other");
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.rename("other"), 409, "Bucket 'other' already exists");
    });
  });
});
