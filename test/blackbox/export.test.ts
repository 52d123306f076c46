/**
 * scripts/export.ts copies a bucket out to a directory and back with reduct-js: every record comes
 * back with its timestamp, bytes, labels and content type, and the bucket with its settings.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type Bucket, QuotaType } from "reduct-js";
import { exportBucket, importBucket } from "../../scripts/export.ts";
import { all, cleanStorage, makeClient } from "./helpers.ts";

/** Every record, `$meta` attachments included (the entry list does not show them). */
async function snapshot(bucket: Bucket) {
  const records = [];
  const names = (await bucket.getEntryList()).flatMap(({ name }) => [name, `${name}/$meta`]);
  for (const name of names) {
    let found: Awaited<ReturnType<Bucket["beginRead"]>>[];
    try {
      found = await all(bucket.query(name));
    } catch (error) {
      if (typeof error === "object" && error !== null && "status" in error && error.status === 404) continue;
      throw error;
    }
    for (const record of found) {
      records.push({
        entry: name,
        time: record.time,
        contentType: record.contentType,
        labels: record.labels,
        bytes: (await record.read()).toString("hex"),
      });
    }
  }
  return records.sort((a, b) => (a.entry === b.entry ? Number(a.time - b.time) : a.entry < b.entry ? -1 : 1));
}

describe("scripts/export.ts", () => {
  const client = makeClient();
  const dir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-export-"));

  before(async () => {
    await cleanStorage(client);
  });

  after(async () => {
    await cleanStorage(client);
    rmSync(dir, { recursive: true, force: true });
  });

  it("exports a bucket and imports it into another one, record for record", async () => {
    const source = await client.createBucket("export-src", {
      maxBlockRecords: 16n,
      quotaType: QuotaType.FIFO,
      quotaSize: 50_000_000n,
    });
    const records: [string, bigint, string, Record<string, string>, Buffer][] = [
      ["cam/front", 1_000_000n, "image/jpeg", { exposure: "10" }, randomBytes(300)],
      ["cam/front", 1_000_100n, "image/jpeg", {}, randomBytes(200 * 1024)],
      ["log", 5n, "text/plain", { level: "info", host: "a,b" }, Buffer.from("hello\n")],
      ["log", 6n, "application/json", {}, Buffer.from('{"a": 1}')],
      ["empty", 7n, "application/octet-stream", {}, Buffer.alloc(0)],
      ["constructor", 8n, "text/plain", { Camera: "Front", ISO: "100", lower: "x" }, Buffer.from("ctor")],
      ["log", 9n, "text/plain", { MixedCase: "Value" }, randomBytes(150 * 1024)],
    ];
    for (const [entry, ts, contentType, labels, bytes] of records) {
      // Batch writes keep label-name case (single-record writes carry names in header names).
      const batch = await source.beginWriteBatch(entry);
      batch.add(ts, bytes, contentType, labels);
      assert.equal((await batch.write()).size, 0);
    }
    await source.writeAttachments("log", { schema: { fields: ["a", "b"] }, Units: "ms" });
    await source.writeAttachments("constructor", { note: "attached" });
    const copied = records.length + 3;

    assert.equal(await exportBucket(client, "export-src", dir), copied);
    assert.deepEqual(await importBucket(client, "export-dst", dir), { written: copied, skipped: 0 });

    const target = await client.getBucket("export-dst");
    assert.deepEqual(await snapshot(target), await snapshot(source));
    assert.deepEqual(await target.getSettings(), await source.getSettings());
    assert.deepEqual(await target.readAttachments("log"), { schema: { fields: ["a", "b"] }, Units: "ms" });
    assert.deepEqual(await target.readAttachments("constructor"), { note: "attached" });
    const labels = Object.fromEntries(
      (await snapshot(target)).map((record) => [`${record.entry}@${record.time}`, record.labels]),
    );
    assert.deepEqual(labels["constructor@8"], { Camera: "Front", ISO: "100", lower: "x" });
    assert.deepEqual(labels["log@9"], { MixedCase: "Value" });

    // A second import finds every record already there and changes nothing.
    assert.deepEqual(await importBucket(client, "export-dst", dir), { written: 0, skipped: copied });
    assert.deepEqual(await snapshot(target), await snapshot(source));
  });
});
