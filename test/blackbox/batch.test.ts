// Left out: nothing — reduct-js' BatchV2.test.ts and RecordBatch.test.ts only test the client against mocks (header/body generation), not a server.
/**
 * Batches through reduct-js (port of reduct-js test/Bucket.test.ts "should write a batch of records",
 * "... with errors", "should update labels in a batch", "should remove a batch of records", and of its
 * RecordBatch / multi-entry batch cases). `Batch` (beginWriteBatch, beginUpdateBatch,
 * beginRemoveBatch) always uses batch protocol v1 (`…/{entry}/batch`); `RecordBatch`
 * (beginWrite/Update/RemoveRecordBatch) uses batch protocol v2 (`/io/{bucket}/write|update|remove`).
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { APIError, type Bucket } from "reduct-js";
import { all, assertApiError, at, cleanStorage, createFixtureBucket, makeClient } from "./helpers.ts";

/** Asserts that `errors` (a Map of timestamp → APIError) holds exactly `expected` ([ts, status, message]). */
function assertErrors(errors: Map<bigint, APIError> | undefined, expected: readonly (readonly [bigint, number, string])[]): void {
  assert.ok(errors, "no errors map");
  assert.deepEqual(
    [...errors.entries()].map(([ts, error]) => [ts, error.status, error.message]),
    expected,
  );
  for (const error of errors.values()) assert.ok(error instanceof APIError);
}

/** Reads every record of `entry` as [time, contentType, labels, content]. */
/** A record as [time, content type, labels, content]. */
type ReadRow = [time: bigint, contentType: string | undefined, labels: unknown, content: string];

async function readEntry(bucket: Bucket, entry: string): Promise<ReadRow[]> {
  const out: ReadRow[] = [];
  for (const record of await all(bucket.query(entry))) {
    out.push([record.time, record.contentType, record.labels, await record.readAsString()]);
  }
  return out;
}

describe("Batch", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  describe("batch protocol v1 (Batch)", () => {
    it("should write a batch of records", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = await bucket.beginWriteBatch("entry-10");
      batch.add(1000n, "somedata1");
      batch.add(2000n, "somedata2", "text/plain");
      batch.add(3000n, "somedata3", undefined, {
        label1: "value1",
        label2: "value2",
      });

      assert.equal(batch.size(), 27n);
      assert.equal(batch.recordCount(), 3);
      assert.ok(batch.lastAccessTime() > 0);
      const errors = await batch.write();
      assert.equal(errors.size, 0);

      const records = await all(bucket.query("entry-10"));
      assert.equal(records.length, 3);

      assert.equal(at(records, 0).time, 1000n);
      assert.equal(at(records, 0).size, 9n);
      assert.equal(at(records, 0).contentType, "application/octet-stream");
      assert.deepEqual(at(records, 0).labels, {});
      assert.equal(await at(records, 0).readAsString(), "somedata1");

      assert.equal(at(records, 1).time, 2000n);
      assert.equal(at(records, 1).size, 9n);
      assert.equal(at(records, 1).contentType, "text/plain");
      assert.deepEqual(at(records, 1).labels, {});
      assert.equal(await at(records, 1).readAsString(), "somedata2");

      assert.equal(at(records, 2).time, 3000n);
      assert.equal(at(records, 2).size, 9n);
      assert.equal(at(records, 2).contentType, "application/octet-stream");
      assert.deepEqual(at(records, 2).labels, { label1: "value1", label2: "value2" });
      assert.equal(await at(records, 2).readAsString(), "somedata3");

      batch.clear();
      assert.equal(batch.size(), 0n);
      assert.equal(batch.recordCount(), 0);
      assert.equal(batch.lastAccessTime(), 0);
    });

    it("should write a batch of records with errors", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = await bucket.beginWriteBatch("entry-1");
      batch.add(1000_000n, "somedata1");
      batch.add(2000n, "somedata2", "text/plain");
      batch.add(3000n, "somedata3", undefined, {
        label1: "value1",
        label2: "value2",
      });

      const errors = await batch.write();
      assertErrors(errors, [[1000_000n, 409, "A record with timestamp 1000000 already exists"]]);

      // The refused record is untouched; the others were written.
      const record = await bucket.beginRead("entry-1", 1000_000n);
      assert.equal(await record.readAsString(), "somedata1");
      assert.deepEqual(
        (await readEntry(bucket, "entry-1")).map(([time]) => time),
        [2000n, 3000n, 1000_000n],
      );
    });

    it("should write label values containing commas", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = await bucket.beginWriteBatch("entry-commas");
      batch.add(1000n, "a", "text/plain", { list: "[1,2]", plain: "x" });
      batch.add(2000n, "b", undefined, { list: "a,b,c" });
      assert.equal((await batch.write()).size, 0);

      assert.deepEqual(await readEntry(bucket, "entry-commas"), [
        [1000n, "text/plain", { list: "[1,2]", plain: "x" }, "a"],
        [2000n, "application/octet-stream", { list: "a,b,c" }, "b"],
      ]);
    });

    it("should update labels in a batch", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = await bucket.beginUpdateBatch("entry-1");
      batch.addOnlyLabels(1000_000n, { label1: "value1", label2: "" });
      batch.addOnlyLabels(20_000_000n, {});

      const errors = await batch.write();
      assertErrors(errors, [[20_000_000n, 404, "Record 20000000 not found in entry bucket/entry-1"]]);

      const record = await bucket.beginRead("entry-1", 1000_000n);
      assert.deepEqual(record.labels, { label1: "value1", label3: "true" });
      assert.equal(await record.readAsString(), "somedata1");
    });

    it("should remove a batch of records", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = await bucket.beginRemoveBatch("entry-2");
      batch.addOnlyTimestamp(2000_000n);
      batch.addOnlyTimestamp(3000_000n);
      batch.addOnlyTimestamp(5000_000n);

      const errors = await batch.write();
      assertErrors(errors, [[5000_000n, 404, "Record 5000000 not found in entry bucket/entry-2"]]);

      await assertApiError(bucket.beginRead("entry-2", 2000_000n), 404);
      await assertApiError(bucket.beginRead("entry-2", 3000_000n), 404);
      assert.deepEqual(await readEntry(bucket, "entry-2"), [[4000_000n, "application/octet-stream", {}, "somedata4"]]);
    });
  });

  describe("batch protocol v2 (RecordBatch)", () => {
    it("should write a batch of records to several entries", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = bucket.beginWriteRecordBatch();
      batch.add("alpha", 1000n, "alpha-1", "text/plain", { a: "1" });
      batch.add("alpha", 2000n, "alpha-2", "text/plain", { a: "2", b: "x,y" });
      batch.add("beta", 3000n, "beta-3");
      batch.add("beta", 4000n, "beta-4", undefined, { c: "3" });

      assert.equal(batch.size(), 26n);
      assert.equal(batch.recordCount(), 4);
      assert.ok(batch.lastAccessTime() > 0);
      const errors = await batch.send();
      assert.equal(errors.size, 0);

      assert.deepEqual(await readEntry(bucket, "alpha"), [
        [1000n, "text/plain", { a: "1" }, "alpha-1"],
        [2000n, "text/plain", { a: "2", b: "x,y" }, "alpha-2"],
      ]);
      assert.deepEqual(await readEntry(bucket, "beta"), [
        [3000n, "application/octet-stream", {}, "beta-3"],
        [4000n, "application/octet-stream", { c: "3" }, "beta-4"],
      ]);

      const both = await all(bucket.query(["alpha", "beta"]));
      assert.deepEqual(
        both.map((record) => [record.entry, record.time]),
        [
          ["alpha", 1000n],
          ["alpha", 2000n],
          ["beta", 3000n],
          ["beta", 4000n],
        ],
      );

      batch.clear();
      assert.equal(batch.size(), 0n);
      assert.equal(batch.recordCount(), 0);
      assert.equal(batch.lastAccessTime(), 0);
    });

    it("should write a batch of records to entries with slashes", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = bucket.beginWriteRecordBatch();
      batch.add("a/x", 1000n, "ax", "text/plain");
      batch.add("a/x/y", 2000n, "axy", "text/plain", { k: "v" });
      assert.equal((await batch.send()).size, 0);

      assert.deepEqual(await readEntry(bucket, "a/x"), [[1000n, "text/plain", {}, "ax"]]);
      assert.deepEqual(await readEntry(bucket, "a/x/y"), [[2000n, "text/plain", { k: "v" }, "axy"]]);
    });

    it("should write a batch of records with errors", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = bucket.beginWriteRecordBatch();
      batch.add("entry-1", 1000_000n, "somedata1");
      batch.add("entry-3", 2000_000n, "somedata2", "text/plain");

      const errors = await batch.send();
      assert.deepEqual([...errors.keys()], ["entry-1"]);
      const entryErrors = errors.get("entry-1");
      assert.ok(entryErrors);
      const error = entryErrors.get(1000000n);
      assert.ok(error instanceof APIError);
      assert.deepEqual(error, new APIError("A record with timestamp 1000000 already exists", 409));
      assert.equal(entryErrors.size, 1);

      assert.deepEqual(await readEntry(bucket, "entry-3"), [[2000_000n, "text/plain", {}, "somedata2"]]);
    });

    it("should update labels in a batch across entries", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = bucket.beginUpdateRecordBatch();
      batch.addOnlyLabels("entry-1", 1000_000n, { label1: "value1", label2: "" });
      batch.addOnlyLabels("entry-2", 2000_000n, { x: "1" });
      batch.addOnlyLabels("entry-2", 3000_000n, { x: "2", y: "a,b" });
      batch.addOnlyLabels("entry-2", 20_000_000n, { x: "3" });

      const errors = await batch.send();
      assert.deepEqual([...errors.keys()], ["entry-2"]);
      assertErrors(errors.get("entry-2"), [[20_000_000n, 404, "Record 20000000 not found in entry bucket/entry-2"]]);

      let record = await bucket.beginRead("entry-1", 1000_000n);
      assert.deepEqual(record.labels, { label1: "value1", label3: "true" });
      record = await bucket.beginRead("entry-2", 2000_000n);
      assert.deepEqual(record.labels, { x: "1" });
      record = await bucket.beginRead("entry-2", 3000_000n);
      assert.deepEqual(record.labels, { x: "2", y: "a,b" });
      record = await bucket.beginRead("entry-2", 4000_000n);
      assert.deepEqual(record.labels, {});
      assert.equal(await record.readAsString(), "somedata4");
    });

    it("should remove a batch of records across entries", async () => {
      const bucket = await client.getBucket("bucket");
      const batch = bucket.beginRemoveRecordBatch();
      batch.addOnlyTimestamp("entry-1", 1000_000n);
      batch.addOnlyTimestamp("entry-2", 3000_000n);
      batch.addOnlyTimestamp("entry-2", 5000_000n);

      const errors = await batch.send();
      assert.deepEqual([...errors.keys()], ["entry-2"]);
      assertErrors(errors.get("entry-2"), [[5000_000n, 404, "Record 5000000 not found in entry bucket/entry-2"]]);

      await assertApiError(bucket.beginRead("entry-1", 1000_000n), 404);
      await assertApiError(bucket.beginRead("entry-2", 3000_000n), 404);
      assert.deepEqual(
        (await readEntry(bucket, "entry-2")).map(([time, , , content]) => [time, content]),
        [
          [2000_000n, "somedata2"],
          [4000_000n, "somedata4"],
        ],
      );
    });
  });
});
