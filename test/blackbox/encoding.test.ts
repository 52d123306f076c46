/**
 * Record bytes through `npm start` reach clients byte-exact with an exact Content-Length, whatever
 * the content type (text/html included: `wrangler dev`'s proxy streamed those through HTMLRewriter,
 * chunked, which is why `npm start` serves with Miniflare directly) and whatever the client
 * accepts. wrangler dev copies Cloudflare's edge compression (gzip/br for text, JSON, XML, SVG,
 * JavaScript… when the client accepts it), which dropped Content-Length: reduct-js then reported `record.size === 0n` and reduct-py (aiohttp sends
 * `Accept-Encoding: gzip, deflate` and reads `content-length` for the size) raised KeyError.
 *
 * Two views: the official reduct-js client (undici's fetch asks for gzip/br and decompresses for
 * it), and raw HTTP with node:http, which decompresses nothing, so the wire is what we check.
 * reduct-py cannot be installed here; its read path is emulated by the raw requests: a GET whose
 * `content-length` header must be present and equal to the stored size.
 *
 * One thing here is not the server's doing, and is asserted as what it is: reduct-js's HttpClient
 * parses any response whose content type starts with `application/json` as JSON (and returns
 * `text/*` bodies as strings), so its single-record read of a JSON record whose bytes are not one
 * JSON document fails in the client; queries read those records fine.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { API_TOKEN, at, cleanStorage, makeClient, readAll, STORAGE_URL } from "./helpers.ts";

const CONTENT_TYPES = [
  "text/plain",
  "application/json",
  "application/xml",
  "image/svg+xml",
  "application/javascript",
  "text/html",
  "text/html; charset=utf-8",
  "text/css",
  "text/csv",
  "application/octet-stream",
  "image/jpeg",
];
/** Each type as a staged record; three also large enough for their own R2 object. */
const SMALL = 600;
const LARGE = 200 * 1024;
const RECORDS: [string, number][] = [
  ...CONTENT_TYPES.map((contentType): [string, number] => [contentType, SMALL]),
  ["text/plain", LARGE],
  ["image/jpeg", LARGE],
  ["text/html", LARGE],
];
const ACCEPT_EVERYTHING = "gzip, deflate, br, zstd";
/** reduct-js turns these bodies into JSON values instead of bytes (HttpClient.parseResponse). */
const parsedByReductJs = (contentType: string): boolean => contentType.startsWith("application/json");

/** Compressible bytes (the edge would shrink them a lot), distinct per record. */
function payload(size: number, seed: number): Buffer {
  const line = Buffer.from(`{"seq": ${seed}, "value": "lorem ipsum dolor sit amet"}\n`);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(out, i);
  return out;
}

/** One raw request; resolves with status, headers and the body exactly as it came off the socket. */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status?: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const url = new URL(`/api/v1${path}`, STORAGE_URL);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method, headers: { authorization: `Bearer ${API_TOKEN}`, "accept-encoding": ACCEPT_EVERYTHING, ...headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end();
  });
}

async function createQuery(path: string, body: unknown) {
  const url = new URL(`/api/v1${path}`, STORAGE_URL);
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `create query ${path}: ${response.headers.get("x-reduct-error")}`);
  return ((await response.json()) as { id: number }).id;
}

/** Every read path that carries record bytes, each returning the raw request to send. */
const READ_PATHS: Record<string, (entry: string) => Promise<{ path: string; headers?: Record<string, string> }>> = {
  "single ?ts=": async (entry) => ({ path: `/b/enc/${entry}?ts=1000000` }),
  "single latest": async (entry) => ({ path: `/b/enc/${entry}` }),
  "single ?q=": async (entry) => ({
    path: `/b/enc/${entry}?q=${await createQuery(`/b/enc/${entry}/q`, { query_type: "QUERY" })}`,
  }),
  "v1 batch": async (entry) => ({
    path: `/b/enc/${entry}/batch?q=${await createQuery(`/b/enc/${entry}/q`, { query_type: "QUERY" })}`,
  }),
  "v2 /io read": async (entry) => ({
    path: "/io/enc/read",
    headers: { "x-reduct-query-id": String(await createQuery("/io/enc/q", { query_type: "QUERY", entries: [entry] })) },
  }),
};

describe("Record bytes are never compressed on the way out", () => {
  const client = makeClient();
  /** entry name → { contentType, bytes } */
  const records = new Map();

  before(async () => {
    await cleanStorage(client);
    const bucket = await client.createBucket("enc");
    let seed = 0;
    for (const [contentType, size] of RECORDS) {
      const entry = `${contentType.replace(/[^a-z0-9]/g, "-")}-${size}`;
      const bytes = payload(size, seed++);
      const writer = await bucket.beginWrite(entry, { ts: 1000_000n, contentType });
      await writer.write(bytes);
      records.set(entry, { contentType, bytes });
    }
  });

  after(async () => {
    await cleanStorage(client);
  });

  it("reduct-js: record.size and bytes by timestamp, latest, HEAD and query", async () => {
    const bucket = await client.getBucket("enc");
    for (const [entry, { contentType, bytes }] of records) {
      const size = BigInt(bytes.length);
      const head = await bucket.beginRead(entry, 1000_000n, true);
      assert.equal(head.size, size, `${entry}: size by HEAD`);
      assert.equal(head.contentType, contentType);

      if (parsedByReductJs(contentType)) {
        // json-bigint throws a plain object named SyntaxError, not an Error.
        await assert.rejects(bucket.beginRead(entry, 1000_000n), (error: { name?: string }) => error?.name === "SyntaxError");
      } else {
        const byTs = await bucket.beginRead(entry, 1000_000n);
        assert.equal(byTs.size, size, `${entry}: size by ts`);
        assert.ok((await byTs.read()).equals(bytes), `${entry}: bytes by ts`);

        const latest = await bucket.beginRead(entry);
        assert.equal(latest.size, size, `${entry}: size of latest`);
        assert.ok(Buffer.from(await readAll(latest.stream)).equals(bytes), `${entry}: bytes of latest`);
      }

      const queried: [bigint, Buffer][] = [];
      for await (const record of bucket.query(entry)) queried.push([record.size, await record.read()]);
      assert.equal(queried.length, 1, `${entry}: one record by query`);
      const [querySize, queryBytes] = at(queried, 0);
      assert.equal(querySize, size, `${entry}: size by query`);
      assert.ok(queryBytes.equals(bytes), `${entry}: bytes by query`);
    }
  });

  for (const [pathName, request] of Object.entries(READ_PATHS)) {
    it(`raw HTTP (as reduct-py reads it) with Accept-Encoding: ${ACCEPT_EVERYTHING}: ${pathName}, GET and HEAD`, async () => {
      for (const [entry, { contentType, bytes }] of records) {
        for (const method of ["GET", "HEAD"]) {
          const { path, headers } = await request(entry);
          const response = await rawRequest(method, path, headers);
          const where = `${method} ${path} (${contentType}, ${bytes.length} B)`;
          assert.equal(response.status, 200, where);
          const encoding = response.headers["content-encoding"];
          assert.ok(encoding === undefined || encoding === "identity", `${where}: content-encoding ${encoding}`);
          assert.equal(response.headers["transfer-encoding"], undefined, `${where}: transfer-encoding`);
          assert.equal(response.headers["content-length"], String(bytes.length), `${where}: content-length`);
          if (method === "GET") assert.ok(response.body.equals(bytes), `${where}: bytes differ`);
          else assert.equal(response.body.length, 0, `${where}: HEAD has a body`);
        }
      }
    });
  }
});
