/**
 * Query links through `npm start`: reduct-js `createQueryLink` as its own link tests use it, and
 * raw HTTP (node:http decompresses nothing) to see the wire: an exact Content-Length, no
 * Content-Encoding other than identity however the client accepts, and byte ranges.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { cleanStorage, makeClient } from "./helpers.ts";

const client = makeClient();
const BUCKET = "links-blackbox";
const TEXT = "Some text record served through a query link";
const LARGE = Buffer.alloc(300 * 1024, 0x61);

function raw(
  link: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(link, { headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
        );
      })
      .on("error", reject);
  });
}

describe("query links", () => {
  before(async () => {
    await cleanStorage(client);
    const bucket = await client.createBucket(BUCKET);
    const text = await bucket.beginWrite("text", { ts: 1000n, contentType: "text/plain" });
    await text.write(TEXT);
    const big = await bucket.beginWrite("big", { ts: 2000n, contentType: "application/octet-stream" });
    await big.write(LARGE);
  });
  after(async () => cleanStorage(client));

  it("createQueryLink with a record selector, fetched anonymously", async () => {
    const bucket = await client.getBucket(BUCKET);
    const link = await bucket.createQueryLink("text", undefined, undefined, undefined, { entry: "text", timestamp: 1000n });
    const response = await fetch(link);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), TEXT);
  });

  it("custom file name appears in the URL; multi-entry and $limit queries", async () => {
    const bucket = await client.getBucket(BUCKET);
    const link = await bucket.createQueryLink(
      ["text", "big"],
      undefined,
      undefined,
      { when: { $limit: 2 } },
      { entry: "big", timestamp: 2000n },
      undefined,
      "custom-name.txt",
    );
    assert.match(link, /\/links\/custom-name\.txt\?/);
    const response = await fetch(link);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-disposition"), 'attachment; filename="custom-name.txt"');
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), LARGE);
  });

  it("an expired link → 422", async () => {
    const bucket = await client.getBucket(BUCKET);
    const link = await bucket.createQueryLink(
      "text",
      undefined,
      undefined,
      undefined,
      { entry: "text", timestamp: 1000n },
      new Date(Date.now() - 1000),
    );
    const response = await fetch(link);
    assert.equal(response.status, 422);
    assert.equal(response.headers.get("x-reduct-error"), "Query link has expired");
  });

  it("raw HTTP accepting gzip, br, zstd: exact length, never compressed; ranges", async () => {
    const bucket = await client.getBucket(BUCKET);
    const textLink = await bucket.createQueryLink("text", undefined, undefined, undefined, { entry: "text", timestamp: 1000n });
    const accept = { "accept-encoding": "gzip, br, zstd" };
    const whole = await raw(textLink, accept);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers["content-length"], String(Buffer.byteLength(TEXT)));
    assert.ok([undefined, "identity"].includes(whole.headers["content-encoding"]), String(whole.headers["content-encoding"]));
    assert.equal(whole.headers["accept-ranges"], "bytes");
    assert.equal(whole.body.toString(), TEXT);

    const bigLink = await bucket.createQueryLink("big", undefined, undefined, undefined, { entry: "big", timestamp: 2000n });
    const part = await raw(bigLink, { ...accept, range: "bytes=-1000" });
    assert.equal(part.status, 206);
    assert.equal(part.headers["content-range"], `bytes ${LARGE.length - 1000}-${LARGE.length - 1}/${LARGE.length}`);
    assert.equal(part.headers["content-length"], "1000");
    assert.equal(part.body.length, 1000);
    const beyond = await raw(bigLink, { range: `bytes=${LARGE.length}-` });
    assert.equal(beyond.status, 416);
  });
});
