/**
 * Labels with awkward characters through reduct-js, as a user writes and reads them: what the server
 * accepts reads back identical through every way the client reads (beginRead, query, batch writes
 * and v2 batched reads); what no read path could return is refused at write with 422.
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import type { Bucket } from "reduct-js";
import { assertApiError, cleanStorage, makeClient } from "./helpers.ts";

const AWKWARD = {
  quote: 'say "hi"',
  comma: "a,b",
  equals: "x=y=z",
  spaces: "two words here",
  brackets: "[1, 2]",
  constructor: "c",
  punct: "!#$%&'*+-.^_`|~",
};

async function queryAll(bucket: Bucket, entry: string): Promise<{ time: bigint; labels: Record<string, unknown> }[]> {
  const out: { time: bigint; labels: Record<string, unknown> }[] = [];
  for await (const record of bucket.query(entry)) {
    await record.read();
    out.push({ time: record.time, labels: { ...record.labels } });
  }
  return out;
}

describe("Labels round-trip", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("single writes: values with quotes, commas, '=' and spaces read back identical", async () => {
    const bucket = await client.createBucket("labels");
    const writer = await bucket.beginWrite("e", { ts: 1000n, labels: AWKWARD });
    await writer.write("x");
    const record = await bucket.beginRead("e", 1000n);
    assert.deepEqual({ ...record.labels }, AWKWARD);
    assert.deepEqual(await queryAll(bucket, "e"), [{ time: 1000n, labels: AWKWARD }]);
  });

  it("batch writes (v2): mixed-case names and awkward values read back identical through queries", async () => {
    const bucket = await client.createBucket("labels-batch");
    const batch = await bucket.beginWriteBatch("e");
    const mixed = { ...AWKWARD, Camera: "Front Left" };
    batch.add(2000n, "a", "text/plain", mixed);
    batch.add(3000n, "b", "text/plain", { comma: "c,d", quote: 'x"y' });
    await batch.write();
    assert.deepEqual(await queryAll(bucket, "e"), [
      { time: 2000n, labels: mixed },
      { time: 3000n, labels: { comma: "c,d", quote: 'x"y' } },
    ]);
  });

  it("label updates keep awkward values and are refused past the caps, leaving the record as it was", async () => {
    const bucket = await client.createBucket("labels-update");
    const writer = await bucket.beginWrite("e", { ts: 1n, labels: { a: "1" } });
    await writer.write("x");
    await bucket.update("e", 1n, { comma: "p,q", quote: 'r"s' });
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`n${i}`, "v"]));
    await assertApiError(bucket.update("e", 1n, many), 422, "A record can have at most 128 labels");
    const record = await bucket.beginRead("e", 1n);
    assert.deepEqual({ ...record.labels }, { a: "1", comma: "p,q", quote: 'r"s' });
  });

  for (const [what, labels, message] of <[string, Record<string, string>, string][]>[
    [
      "a value with both ',' and '\"'",
      { k: 'a,"b"' },
      "Label value of 'k' must not start with '\"' or contain both ',' and '\"'",
    ],
    ["a value starting with '\"'", { k: '"quoted"' }, "Label value of 'k' must not start with '\"' or contain both ',' and '\"'"],
  ]) {
    it(`single write of ${what} is refused with 422`, async () => {
      const bucket = await client.createBucket("labels-refused");
      const writer = await bucket.beginWrite("e", { ts: 5n, labels });
      await assertApiError(writer.write("x"), 422, message);
      await assertApiError(bucket.beginRead("e", 5n), 404);
    });
  }

  for (const [what, labels, message] of [
    [
      "a name with a space",
      { "x y": "1" },
      "Label name 'x y' is invalid: label names may contain only letters, digits and !#$%&'*+-.^_`|~",
    ],
    ["names differing only by case", { Name: "1", name: "2" }, "Label names 'Name' and 'name' differ only by case"],
    ["a label named __proto__", JSON.parse('{"__proto__": "p"}'), "Label name '__proto__' is reserved"],
  ]) {
    it(`a batch write with ${what} is refused with 422 and stores nothing`, async () => {
      const bucket = await client.createBucket("labels-names");
      const batch = await bucket.beginWriteBatch("e");
      batch.add(1n, "a", "text/plain", { ok: "fine" });
      batch.add(2n, "b", "text/plain", labels);
      await assertApiError(batch.write(), 422, message);
      assert.deepEqual(await queryAll(bucket, "e"), []);
    });
  }
});
