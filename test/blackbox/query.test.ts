// Left out: query links (createQueryLink) — the README lists query links (/links) as unsupported; `ext` is only checked for its 422.
/**
 * Queries and remove-by-query through reduct-js (port of reduct-js test/Bucket.test.ts "query" and the
 * query half of "remove"). The server advertises API 1.21, so the client creates queries with
 * `POST /io/{bucket}/q` and reads them with batch protocol v2 (`GET|HEAD /io/{bucket}/read`).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, beforeEach, describe, it } from "node:test";
import { all, assertApiError, at, cleanStorage, createFixtureBucket, makeClient, md5, withTimeout } from "./helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const times = (records: readonly { time: bigint }[]): bigint[] => records.map((record) => record.time);

describe("Query", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  describe("query", () => {
    for (const [head, contents] of <[boolean, string[]][]>[
      [false, ["somedata2", "somedata3", "somedata4"]],
      [true, ["", "", ""]],
    ]) {
      it(`should query records head=${head}`, async () => {
        const bucket = await client.getBucket("bucket");
        const records = await all(bucket.query("entry-2", undefined, undefined, { head }));

        assert.equal(records.length, 3);
        assert.deepEqual(times(records), [2_000_000n, 3_000_000n, 4_000_000n]);
        for (const [i, record] of records.entries()) {
          assert.equal(record.entry, "entry-2");
          assert.equal(record.size, 9n);
          assert.equal(record.contentType, "application/octet-stream");
          assert.deepEqual(record.labels, {});
          assert.equal(await record.readAsString(), contents[i]);
        }
      });
    }

    it("should query records with parameters", async () => {
      const bucket = await client.getBucket("bucket");
      let records = await all(bucket.query("entry-2", 3_000_000n));
      assert.deepEqual(times(records), [3_000_000n, 4_000_000n]);

      records = await all(bucket.query("entry-2", 2_000_000n, 2_000_001n));
      assert.deepEqual(times(records), [2_000_000n]);

      records = await all(bucket.query("entry-2", undefined, 4_000_000n));
      assert.deepEqual(times(records), [2_000_000n, 3_000_000n], "stop is exclusive");

      records = await all(bucket.query("entry-2", 5_000_000n, 6_000_000n));
      assert.deepEqual(records, []);
    });

    it("should fail to read a query with ttl 0", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(all(bucket.query("entry-2", undefined, undefined, { ttl: 0 })), 404);
    });

    it("should read the labels and content of the fixture record", async () => {
      const bucket = await client.getBucket("bucket");
      const records = await all(bucket.query("entry-1"));
      assert.equal(records.length, 1);
      assert.equal(at(records, 0).time, 1_000_000n);
      assert.deepEqual(at(records, 0).labels, { label1: "label1", label2: "100", label3: "true" });
      assert.equal(await at(records, 0).readAsString(), "somedata1");
    });

    it("should query limited number of records ($limit)", async () => {
      const bucket = await client.getBucket("bucket");
      const records = await all(bucket.query("entry-2", 0n, undefined, { when: { $limit: 1 } }));
      assert.deepEqual(times(records), [2_000_000n]);
    });

    it("should query each N-th record ($each_n)", async () => {
      const bucket = await client.getBucket("bucket");
      let records = await all(bucket.query("entry-2", 0n, undefined, { when: { $each_n: 3 } }));
      assert.deepEqual(times(records), [4_000_000n]);

      records = await all(bucket.query("entry-2", 0n, undefined, { when: { $each_n: 2 } }));
      assert.deepEqual(times(records), [3_000_000n]);
    });

    it("should query a record each 2 s ($each_t)", async () => {
      const bucket = await client.getBucket("bucket");
      const records = await all(bucket.query("entry-2", 0n, undefined, { when: { $each_t: 2 } }));
      // The first record is only the reference point; 4 s is the first one 2 s after it.
      assert.deepEqual(times(records), [4_000_000n]);
    });

    it("should query records with condition", async () => {
      const bucket = await client.getBucket("bucket");
      let record = await bucket.beginWrite("entry-labels", { ts: 1_000_000n, labels: { score: 10, class: "cat" } });
      await record.write("somedata1");
      record = await bucket.beginWrite("entry-labels", { ts: 2_000_000n, labels: { score: 20, class: "dog" } });
      await record.write("somedata1");

      const records = await all(
        bucket.query("entry-labels", undefined, undefined, {
          when: { "&score": { $gt: 10 } },
        }),
      );
      assert.equal(records.length, 1);
      assert.equal(at(records, 0).time, 2_000_000n);
      assert.deepEqual(at(records, 0).labels, { score: "20", class: "dog" });
    });

    it("should query records with strict or non-strict condition", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(
        all(
          bucket.query("entry-1", undefined, undefined, {
            when: { "&NOT_EXIST": { $gt: 10 } },
            strict: true,
          }),
        ),
        404,
      );

      const records = await all(
        bucket.query("entry-1", undefined, undefined, {
          when: { "&NOT_EXIST": { $gt: 10 } },
        }),
      );
      assert.equal(records.length, 0);
    });

    it("should reject a query with extension parameters", async () => {
      const bucket = await client.getBucket("bucket");
      await assertApiError(all(bucket.query("entry-1", undefined, undefined, { ext: { test: {} } })), 422);
    });

    it("should return records sorted by time when they were written out of order", async () => {
      const bucket = await client.getBucket("bucket");
      for (const second of [10n, 1n, 11n, 2n, 3n]) {
        const record = await bucket.beginWrite("entry-unordered", second * 1_000_000n);
        await record.write(`data-${second}`);
      }

      const records = await all(bucket.query("entry-unordered"));
      assert.deepEqual(times(records), [1_000_000n, 2_000_000n, 3_000_000n, 10_000_000n, 11_000_000n]);
      const contents = [];
      for (const record of records) contents.push(await record.readAsString());
      assert.deepEqual(contents, ["data-1", "data-2", "data-3", "data-10", "data-11"]);
    });

    it("should query several entries in global time order", async () => {
      const bucket = await client.getBucket("bucket");
      let records = await all(bucket.query(["entry-1", "entry-2"]));
      assert.deepEqual(
        records.map((record) => [record.entry, record.time]),
        [
          ["entry-1", 1_000_000n],
          ["entry-2", 2_000_000n],
          ["entry-2", 3_000_000n],
          ["entry-2", 4_000_000n],
        ],
      );
      const contents = [];
      for (const record of records) contents.push(await record.readAsString());
      assert.deepEqual(contents, ["somedata1", "somedata2", "somedata3", "somedata4"]);
      assert.deepEqual(at(records, 0).labels, { label1: "label1", label2: "100", label3: "true" });
      assert.deepEqual(at(records, 1).labels, {});

      for (const [entry, second] of <[string, bigint][]>[
        ["first", 3n],
        ["first", 4n],
        ["second", 1n],
        ["second", 2n],
      ]) {
        const record = await bucket.beginWrite(entry, second * 1_000_000n);
        await record.write(`${entry}-${second}`);
      }
      records = await all(bucket.query(["first", "second"]));
      assert.deepEqual(
        records.map((record) => [record.entry, record.time]),
        [
          ["second", 1_000_000n],
          ["second", 2_000_000n],
          ["first", 3_000_000n],
          ["first", 4_000_000n],
        ],
      );
      contents.length = 0;
      for (const record of records) contents.push(await record.readAsString());
      assert.deepEqual(contents, ["second-1", "second-2", "first-3", "first-4"]);
    });

    it("should query records continuously", async () => {
      const bucket = await client.getBucket("bucket");
      const iterator = bucket
        .query("entry-2", undefined, undefined, { continuous: true, pollInterval: 0.1, ttl: 10 })
        [Symbol.asyncIterator]();
      const next = async (what: string) => {
        const { value, done } = await withTimeout(iterator.next(), 10_000, `waiting for ${what}`);
        assert.equal(done, false, `the continuous query ended before ${what}`);
        return value;
      };

      try {
        for (const [i, ts] of [2_000_000n, 3_000_000n, 4_000_000n].entries()) {
          const record = await next(`existing record ${ts}`);
          assert.equal(record.time, ts);
          assert.equal(await record.readAsString(), `somedata${i + 2}`);
        }

        for (const ts of [5_000_000n, 6_000_000n]) {
          // Ask first, then write 1.5 s later: the client is polling an exhausted continuous query
          // (empty batches or 204s) when the record arrives.
          const pending = next(`the record written at ${ts} after the query started`);
          pending.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
          await sleep(1_500);
          const written = await bucket.beginWrite("entry-2", { ts, labels: { n: String(ts) } });
          await written.write(`new-${ts}`);
          const record = await pending;
          assert.equal(record.time, ts);
          assert.deepEqual(record.labels, { n: String(ts) });
          assert.equal(await record.readAsString(), `new-${ts}`);
        }
      } finally {
        // The generator is suspended at a yield when every await above succeeded; after a timeout
        // the pending read ends when the bucket is removed by the next cleanup.
        iterator.return(undefined).catch(() => {});
      }
    });

    it("should query batched big blobs", async () => {
      const bigBlob1 = randomBytes(16_000_000);
      const bigBlob2 = randomBytes(16_000_000);

      const bucket = await client.getBucket("bucket");
      let record = await bucket.beginWrite("big-blob", 1_000_000n);
      await record.write(bigBlob1);
      record = await bucket.beginWrite("big-blob", 2_000_000n);
      await record.write(bigBlob2);

      const blobs = await all(bucket.query("big-blob"));
      assert.equal(blobs.length, 2);
      assert.deepEqual(times(blobs), [1_000_000n, 2_000_000n]);
      assert.equal(at(blobs, 0).size, 16_000_000n);
      assert.equal(at(blobs, 1).size, 16_000_000n);
      const data1 = await at(blobs, 0).read();
      const data2 = await at(blobs, 1).read();
      assert.equal(data1.length, bigBlob1.length);
      assert.equal(md5(data1), md5(bigBlob1));
      assert.equal(data2.length, bigBlob2.length);
      assert.equal(md5(data2), md5(bigBlob2));
    });
  });

  describe("remove by query", () => {
    it("should remove records by query across entries", async () => {
      const bucket = await client.getBucket("bucket");
      const removed = await bucket.removeQuery(["entry-1", "entry-2"], 0n, 3_000_000n);
      assert.equal(removed, 2);

      await assertApiError(bucket.beginRead("entry-1"), 404);
      await assertApiError(bucket.beginRead("entry-2", 2_000_000n), 404);
      const records = await all(bucket.query("entry-2"));
      assert.deepEqual(times(records), [3_000_000n, 4_000_000n]);
      assert.equal(await at(records, 0).readAsString(), "somedata3");
      assert.equal(await at(records, 1).readAsString(), "somedata4");
    });

    it("should remove records by query with $each_n", async () => {
      const bucket = await client.getBucket("bucket");
      const removed = await bucket.removeQuery("entry-2", 1_000_000n, 5_000_000n, { when: { $each_n: 2 } });
      assert.equal(removed, 1);
      await assertApiError(bucket.beginRead("entry-2", 3_000_000n), 404);

      const records = await all(bucket.query("entry-2"));
      assert.deepEqual(times(records), [2_000_000n, 4_000_000n]);
    });

    it("should remove records by condition", async () => {
      const bucket = await client.getBucket("bucket");
      const removed = await bucket.removeQuery("entry-1", 1_000_000n, 3_000_000n, {
        when: { "&label3": { $eq: true } },
      });
      assert.equal(removed, 1);
      await assertApiError(bucket.beginRead("entry-1", 1_000_000n), 404);
    });

    it("should remove records by strict and non-strict condition", async () => {
      const bucket = await client.getBucket("bucket");
      const removed = await bucket.removeQuery("entry-1", 1_000_000n, 3_000_000n, {
        when: { "&NOT_EXIST": { $eq: true } },
      });
      assert.equal(removed, 0);

      await assertApiError(
        bucket.removeQuery("entry-1", 1_000_000n, 3_000_000n, {
          when: { "&NOT_EXIST": { $eq: true } },
          strict: true,
        }),
        404,
      );
      const record = await bucket.beginRead("entry-1", 1_000_000n);
      assert.equal(await record.readAsString(), "somedata1");
    });
  });
});
