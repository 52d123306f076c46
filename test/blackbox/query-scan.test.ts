/**
 * A selective query through reduct-js over many records: the bucket object scans a bounded number of
 * index rows per call and the Worker calls again until it finds a record. In a file of its own: it
 * takes most of the smoke's per-file time budget by itself.
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { all, at, cleanStorage, createFixtureBucket, makeClient, withTimeout } from "./helpers.ts";

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

  describe("selective scans", () => {
    it("a when that matches only the last of 51,000 records returns it (GET and HEAD)", async () => {
      const bucket = await client.getBucket("bucket");
      const count = 51_000;
      for (let first = 0; first < count; first += 1000) {
        const batch = await bucket.beginWriteBatch("scan");
        for (let i = first; i < Math.min(count, first + 1000); i++) {
          batch.add(BigInt(1_000_000 + i), "x", "text/plain", { match: i === count - 1 ? "yes" : "no" });
        }
        assert.equal((await batch.write()).size, 0);
      }
      const last = BigInt(1_000_000 + count - 1);
      for (const head of [false, true]) {
        const records = await withTimeout(
          all(bucket.query("scan", undefined, undefined, { when: { "&match": { $eq: "yes" } }, head })),
          60_000,
          "the selective query",
        );
        assert.deepEqual(times(records), [last]);
        assert.equal(await at(records, 0).readAsString(), head ? "" : "x");
      }
    });
  });
});
