// Left out: nothing — every reduct-js attachment case (JSON values, keys "1"/"2.5"/"$system", remove selected/all) is ported.
/**
 * Entry attachments through reduct-js (port of reduct-js test/Bucket.test.ts "attachments"). The client
 * stores them as JSON records in `<entry>/$meta` with a `key` label (v2 batch write), reads them with a
 * v2 query on that entry, and removes them by marking matches `remove=true` (query + v2 update).
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { cleanStorage, createFixtureBucket, makeClient } from "./helpers.ts";

/** writeAttachments stamps records with Date.now() µs: keep two calls out of the same millisecond. */
const nextMillisecond = () => new Promise((resolve) => setTimeout(resolve, 2));

describe("Attachments", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("should write and read attachments", async () => {
    const bucket = await client.getBucket("bucket");
    const attachments = {
      "meta-1": { enabled: true, values: [1, 2, 3] },
      "meta-2": { name: "camera", nested: { fx: 1260.1, fy: 1261.2 } },
      text: "plain string",
      number: 42,
      nothing: null,
    };
    await bucket.writeAttachments("entry-1", attachments);

    assert.deepEqual(await bucket.readAttachments("entry-1"), attachments);
    assert.deepEqual(await bucket.readAttachments("entry-2"), {});
  });

  it("should support numeric keys and keys starting with $", async () => {
    const bucket = await client.getBucket("bucket");
    const attachments = {
      1: { index: 1 },
      2.5: { index: 2.5 },
      $system: { reserved: true },
    };
    await bucket.writeAttachments("entry-1", attachments);

    assert.deepEqual(await bucket.readAttachments("entry-1"), {
      1: { index: 1 },
      2.5: { index: 2.5 },
      $system: { reserved: true },
    });

    await bucket.removeAttachments("entry-1", ["2.5", "$system"]);
    assert.deepEqual(await bucket.readAttachments("entry-1"), { 1: { index: 1 } });

    await bucket.removeAttachments("entry-1", ["1"]);
    assert.deepEqual(await bucket.readAttachments("entry-1"), {});
  });

  it("should overwrite an attachment with the same key", async () => {
    const bucket = await client.getBucket("bucket");
    await bucket.writeAttachments("entry-1", { schema: { version: 1 }, other: "kept" });
    await nextMillisecond();
    await bucket.writeAttachments("entry-1", { schema: { version: 2 } });

    assert.deepEqual(await bucket.readAttachments("entry-1"), { schema: { version: 2 }, other: "kept" });
  });

  it("should remove selected attachments", async () => {
    const bucket = await client.getBucket("bucket");
    await bucket.writeAttachments("entry-1", {
      "meta-1": { a: 1 },
      "meta-2": { b: 2 },
      "meta-3": { c: 3 },
    });

    await bucket.removeAttachments("entry-1", ["meta-1", "meta-3"]);
    assert.deepEqual(await bucket.readAttachments("entry-1"), { "meta-2": { b: 2 } });

    // A removed key can be written again.
    await nextMillisecond();
    await bucket.writeAttachments("entry-1", { "meta-1": { a: "again" } });
    assert.deepEqual(await bucket.readAttachments("entry-1"), { "meta-1": { a: "again" }, "meta-2": { b: 2 } });
  });

  it("should remove all attachments", async () => {
    const bucket = await client.getBucket("bucket");
    await bucket.writeAttachments("entry-1", { "meta-1": { a: 1 }, "meta-2": { b: 2 } });
    await bucket.writeAttachments("entry-2", { "meta-1": { other: true } });

    await bucket.removeAttachments("entry-1");
    assert.deepEqual(await bucket.readAttachments("entry-1"), {});
    assert.deepEqual(await bucket.readAttachments("entry-2"), { "meta-1": { other: true } });
  });

  it("should keep attachments of entries with slashes apart", async () => {
    const bucket = await client.getBucket("bucket");
    await bucket.writeAttachments("a/x", { schema: "a/x" });
    await bucket.writeAttachments("a/x/y", { schema: "a/x/y" });

    assert.deepEqual(await bucket.readAttachments("a/x"), { schema: "a/x" });
    assert.deepEqual(await bucket.readAttachments("a/x/y"), { schema: "a/x/y" });
  });

  it("should hide attachment entries from the entry list and from queries of the parent", async () => {
    const bucket = await client.getBucket("bucket");
    await bucket.writeAttachments("entry-1", { "meta-1": { a: 1 } });

    const entries = (await bucket.getEntryList()).map((entry) => entry.name);
    assert.deepEqual(entries, ["entry-1", "entry-2"]);
    assert.equal((await bucket.getInfo()).entryCount, 2n);

    const records = [];
    for await (const record of bucket.query("entry-1")) records.push([record.entry, record.time]);
    assert.deepEqual(records, [["entry-1", 1_000_000n]]);
  });
});
