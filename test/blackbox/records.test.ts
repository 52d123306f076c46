/**
 * Single-record API through reduct-js (port of reduct-js test/Bucket.test.ts: "read/write", "update"
 * and record removal; queries and batches get their own files once the server advertises them).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, beforeEach, describe, it } from "node:test";
import { assertApiError, cleanStorage, createFixtureBucket, makeClient, md5, readAll } from "./helpers.ts";

describe("Records", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  describe("read/write", () => {
    it("should read latest record", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginRead("entry-2");

      assert.equal(record.size, 9n);
      assert.equal(record.time, 4000000n);
      assert.equal(record.last, true);
      assert.equal(record.contentType, "application/octet-stream");
      assert.deepEqual(record.labels, {});
      assert.equal(await record.readAsString(), "somedata4");
    });

    for (const [head, content] of <[boolean, string][]>[
      [false, "somedata2"],
      [true, ""],
    ]) {
      it(`should read a record by timestamp (head=${head})`, async () => {
        const bucket = await client.getBucket("bucket");
        const record = await bucket.beginRead("entry-2", 2000000n, head);

        assert.equal(record.size, 9n);
        assert.equal(record.time, 2000000n);
        assert.equal(record.last, true);
        assert.deepEqual(await record.read(), Buffer.from(content));
      });
    }

    it("should read labels written by the fixture", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginRead("entry-1", 1000_000n);
      assert.deepEqual(record.labels, { label1: "label1", label2: "100", label3: "true" });
      assert.equal(await record.readAsString(), "somedata1");
    });

    it("should read a record with error if timestamp is wrong", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.beginRead("entry-2", 10000_000n), 404);
      await assertApiError(bucket.beginRead("entry-2", 10000_000n, true), 404);
    });

    it("should read a record with error if the entry does not exist", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.beginRead("entry-404"), 404, "Entry 'entry-404' not found in bucket 'bucket'");
    });

    it("should write and read a big blob as streams", async () => {
      const bigBlob = randomBytes(2 ** 20);

      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("big-blob");

      // A ReadableStream body: reduct-js sends x-reduct-content-length and no Content-Length.
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(bigBlob.subarray(0, 300_000));
          controller.enqueue(bigBlob.subarray(300_000));
          controller.close();
        },
      });
      await record.write(stream, bigBlob.length);

      const readRecord = await bucket.beginRead("big-blob");
      assert.equal(readRecord.size, BigInt(bigBlob.length));
      const actual = await readAll(readRecord.stream);

      assert.equal(actual.length, bigBlob.length);
      assert.equal(md5(actual), md5(bigBlob));
    });

    it("should write and read a big blob as buffers", async () => {
      const bigBlob = randomBytes(2 ** 20);

      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("big-blob");
      await record.write(bigBlob);

      const reader = await bucket.beginRead("big-blob");
      assert.equal(reader.size, BigInt(bigBlob.length));

      const actual = await reader.read();
      assert.equal(actual.length, bigBlob.length);
      assert.equal(md5(actual), md5(bigBlob));

      const head = await bucket.beginRead("big-blob", reader.time, true);
      assert.equal(head.size, BigInt(bigBlob.length));
      assert.equal((await head.read()).length, 0);
    });

    it("should write and read labels along with records", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("entry-1", {
        labels: { label1: "label1", label2: 100n, label3: true },
      });
      await record.write("somedata1");

      const readRecord = await bucket.beginRead("entry-1");
      assert.deepEqual(readRecord.labels, {
        label1: "label1",
        label2: "100",
        label3: "true",
      });
    });

    it("should write and read content type of records", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("entry-1", {
        contentType: "text/plain",
      });
      await record.write("somedata1");

      const readRecord = await bucket.beginRead("entry-1");
      assert.equal(readRecord.contentType, "text/plain");
      assert.equal(await readRecord.readAsString(), "somedata1");
    });

    it("should write an empty record", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("empty", 5000_000n);
      await record.write("");

      const readRecord = await bucket.beginRead("empty", 5000_000n);
      assert.equal(readRecord.size, 0n);
      assert.equal((await readRecord.read()).length, 0);
    });

    it("should accept belated writes and keep records by timestamp", async () => {
      const bucket = await client.getBucket("bucket");
      for (const ts of [10n, 1n, 11n, 2n, 3n]) {
        const rec = await bucket.beginWrite("entry-order", ts);
        await rec.write(`data${ts}`);
      }

      const latest = await bucket.beginRead("entry-order");
      assert.equal(latest.time, 11n);
      assert.equal(await latest.readAsString(), "data11");
      for (const ts of [1n, 2n, 3n, 10n]) {
        const rec = await bucket.beginRead("entry-order", ts);
        assert.equal(rec.time, ts);
        assert.equal(await rec.readAsString(), `data${ts}`);
      }
      const entry = (await bucket.getEntryList()).find((info) => info.name === "entry-order");
      assert.equal(entry?.recordCount, 5n);
      assert.equal(entry?.oldestRecord, 1n);
      assert.equal(entry?.latestRecord, 11n);
    });

    it("should write and read records of nested entries", async () => {
      const bucket = await client.getBucket("bucket");
      const rec = await bucket.beginWrite("factory-1/line-2/sensor-3", 7000_000n);
      await rec.write("nested");

      const readRecord = await bucket.beginRead("factory-1/line-2/sensor-3");
      assert.equal(readRecord.time, 7000_000n);
      assert.equal(await readRecord.readAsString(), "nested");
      const names = (await bucket.getEntryList()).map((entry) => entry.name);
      for (const name of ["factory-1", "factory-1/line-2", "factory-1/line-2/sensor-3"]) {
        assert.ok(names.includes(name), `entries: ${names}`);
      }
    });

    it("should reject a record with an existing timestamp", async () => {
      const bucket = await client.getBucket("bucket");
      const record = await bucket.beginWrite("entry-1", 1000_000n);
      await assertApiError(record.write("otherdata"), 409, "A record with timestamp 1000000 already exists");

      const stored = await bucket.beginRead("entry-1", 1000_000n);
      assert.equal(await stored.readAsString(), "somedata1");
      const info = await bucket.getInfo();
      assert.equal(info.size, 217n);
    });

    it("should not write into a bucket that does not exist", async () => {
      const bucket = await client.getBucket("bucket");
      await bucket.remove();
      const record = await bucket.beginWrite("entry-1", 9000_000n);
      await assertApiError(record.write("somedata"), [404, 409]);
    });
  });

  describe("update", () => {
    it("should update labels", async () => {
      const bucket = await client.getBucket("bucket");
      const ts = 1000_000n;

      await bucket.update("entry-1", ts, { label1: "label1", label2: "" });
      const readRecord = await bucket.beginRead("entry-1", ts);
      assert.deepEqual(readRecord.labels, {
        label1: "label1",
        label3: "true",
      });
      assert.equal(await readRecord.readAsString(), "somedata1");
    });

    it("should add and overwrite labels", async () => {
      const bucket = await client.getBucket("bucket");
      const ts = 1000_000n;

      await bucket.update("entry-1", ts, { label1: "changed", label4: 42 });
      const readRecord = await bucket.beginRead("entry-1", ts);
      assert.deepEqual(readRecord.labels, {
        label1: "changed",
        label2: "100",
        label3: "true",
        label4: "42",
      });
    });

    it("should fail to update labels of a missing record", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.update("entry-1", 20_000_000n, { label1: "x" }), 404);
    });
  });

  describe("remove", () => {
    it("should remove a record", async () => {
      const bucket = await client.getBucket("bucket");
      await bucket.removeRecord("entry-2", 2000_000n);
      await assertApiError(bucket.beginRead("entry-2", 2000_000n), 404);

      const other = await bucket.beginRead("entry-2", 3000_000n);
      assert.equal(await other.readAsString(), "somedata3");
      const entry = (await bucket.getEntryList()).find((info) => info.name === "entry-2");
      assert.equal(entry?.recordCount, 2n);
      assert.equal(entry?.oldestRecord, 3000_000n);
      assert.equal(entry?.latestRecord, 4000_000n);
    });

    it("should fail to remove a missing record", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(bucket.removeRecord("entry-2", 5000_000n), 404);
    });
  });
});
