/**
 * Entry names that are also properties of every JS object read back through reduct-js queries
 * like any other name, and the server keeps answering `/info` and other buckets afterwards.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { all, at, cleanStorage, makeClient, systemBucketCount, userBuckets } from "./helpers.ts";

const NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];

describe("entries named like Object.prototype properties", () => {
  const client = makeClient();

  before(async () => {
    await cleanStorage(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("query (v2 batches), a wildcard query and the entry list return them; /info stays 200", async () => {
    const bucket = await client.createBucket("proto-names");
    const other = await client.createBucket("proto-other");
    const plain = await other.beginWrite("plain", 1n);
    await plain.write("plain");
    for (const [i, name] of NAMES.entries()) {
      const writer = await bucket.beginWrite(name, BigInt(i + 1));
      await writer.write(`record of ${name}`);
    }
    for (const [i, name] of NAMES.entries()) {
      const records = await all(bucket.query(name));
      assert.deepEqual(
        await Promise.all(records.map(async (record) => [record.time, await record.readAsString()])),
        [[BigInt(i + 1), `record of ${name}`]],
        name,
      );
    }
    const wildcard = await all(bucket.query("*"));
    assert.deepEqual(
      wildcard.map((record) => record.entry),
      NAMES,
    );
    assert.deepEqual((await bucket.getEntryList()).map((entry) => entry.name).sort(), [...NAMES].sort());
    const info = await client.getInfo();
    assert.equal(info.bucketCount, 2n + (await systemBucketCount(client)));
    assert.equal((await userBuckets(client)).length, 2);
    const otherRecords = await all(other.query("plain"));
    assert.equal(await at(otherRecords, 0).readAsString(), "plain");
  });
});
