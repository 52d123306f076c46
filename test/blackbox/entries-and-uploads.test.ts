/**
 * System entries and large uploads through reduct-js against `npm start`: a rename never turns an
 * entry into attachments, FIFO makes room for concurrent large uploads, and an upload cut by a
 * bucket delete and re-create gets a 4xx.
 */
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { QuotaType } from "reduct-js";
import { API_TOKEN, assertApiError, cleanStorage, makeClient, STORAGE_URL } from "./helpers.ts";

describe("System entries and large uploads", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("refuses to rename an entry to $meta, also for a write-only token, and the entry stays usable", async () => {
    const bucket = await client.createBucket("fifo-meta", { quotaType: QuotaType.FIFO, quotaSize: 10_000n });
    const writer = await bucket.beginWrite("junk", 1n);
    await writer.write("junk-bytes");
    const value = await client.createToken("writer-only", {
      permissions: { fullAccess: false, read: [], write: ["fifo-meta"] },
    });
    // The exact request reduct-js' renameEntry sends, with a token that may only write.
    const refused = await fetch(`${STORAGE_URL}/api/v1/b/fifo-meta/junk/rename`, {
      method: "PUT",
      headers: { authorization: `Bearer ${value}`, "content-type": "application/json" },
      body: JSON.stringify({ new_name: "$meta" }),
    });
    await refused.text();
    assert.deepEqual(
      [refused.status, refused.headers.get("x-reduct-error")],
      [422, "Entry 'junk' can't be renamed to system entry '$meta'"],
    );
    await assertApiError(bucket.renameEntry("junk", "$meta"), 422, "Entry 'junk' can't be renamed to system entry '$meta'");
    await assertApiError(bucket.renameEntry("junk", "x/$meta"), 422, "Entry 'junk' can't be renamed to system entry 'x/$meta'");
    assert.deepEqual(
      (await bucket.getEntryList()).map((entry) => entry.name),
      ["junk"],
    );
    const record = await bucket.beginRead("junk", 1n);
    assert.equal((await record.read()).toString(), "junk-bytes");
    await bucket.removeEntry("junk");
  });

  it("30 concurrent 150 KB writes into a 1 MB FIFO bucket all succeed", async () => {
    const bucket = await client.createBucket("fifo-big", { quotaType: QuotaType.FIFO, quotaSize: 1_000_000n });
    const payload = Buffer.alloc(150_000, 7);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, async (_, i) => {
        const writer = await bucket.beginWrite("big", BigInt(1_000_000 + i));
        await writer.write(payload);
      }),
    );
    const failures = results
      .filter((result) => result.status === "rejected")
      .map((result) => `${result.reason?.status} ${result.reason?.message}`);
    assert.deepEqual(failures, []);
    const info = await bucket.getInfo();
    assert.ok(info.size <= 1_000_000n + 3_000n, `bucket size ${info.size}`);
    const latest = await bucket.beginRead("big");
    assert.equal((await latest.read()).length, 150_000);
  });

  it("an upload cut by DELETE and POST of its bucket answers 404 or 409, never 500", async () => {
    await client.createBucket("cut");
    const size = 4 * 1024 * 1024;
    let release: (value?: unknown) => void = () => {};
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    const body = new ReadableStream({
      async start(controller) {
        controller.enqueue(new Uint8Array(1024 * 1024));
        await gate;
        for (let sent = 1024 * 1024; sent < size; sent += 1024 * 1024) controller.enqueue(new Uint8Array(1024 * 1024));
        controller.close();
      },
    });
    const upload = fetch(`${STORAGE_URL}/api/v1/b/cut/big?ts=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-length": String(size) },
      body,
      duplex: "half",
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await (await client.getBucket("cut")).remove();
    await client.createBucket("cut");
    release();
    const response = await upload;
    await response.text();
    assert.ok([404, 409].includes(response.status), `status ${response.status}: ${response.headers.get("x-reduct-error")}`);
    const recreated = await client.getBucket("cut");
    assert.equal(Number((await recreated.getInfo()).entryCount), 0);
  });
});
