/**
 * reduct-edge as the target of a ReductStore 1.21 replication: a sender's session replayed request
 * by request as its HTTP client builds them (raw node:http, so the wire is exactly that): GET the
 * bucket (404) → body-less POST to create it → GET again (its `x-reduct-api` ≥ 1.21 turns
 * compression on) → a gzip batch streamed chunked with no Content-Length → a batch whose
 * connection is cut mid-body, then sent again whole (records already there answer 409 per record,
 * which the sender counts as delivered) → a PATCH of labels (a record missing there answers 404 per
 * record, and the sender writes it instead) → a zstd batch. Everything is read back with reduct-js
 * byte for byte, once each, in order.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { API_TOKEN, all, cleanStorage, makeClient, STORAGE_URL } from "./helpers.ts";

const BUCKET = "replica";
const ENTRY = "sensor/cam";
const KIB = 1024;

interface SentRecord {
  ts: number;
  contentType: string;
  labels: Record<string, string>;
  body: Buffer;
}

/** Deterministic incompressible bytes. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

const reading = (ts: number) => Buffer.from(`frame ${ts}: ${"exposure=12ms;gain=3;".repeat(20 + ts)}`);

function compress(coding: "gzip" | "zstd", bytes: Buffer): Buffer {
  if (coding === "gzip") return zlib.gzipSync(bytes);
  const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  // Node < 22.15 has no zstd: the zstd command line tool makes the same single frame.
  return zstd ? zstd(bytes) : execFileSync("zstd", ["-q", "-c", "-3"], { input: bytes, maxBuffer: 64 * 1024 * 1024 });
}

/**
 * The sender's record header: `<length>,<content type>[,<labels sorted, values with a comma quoted>]`;
 * a label update sends length 0 and no content type.
 */
function timeHeader(record: SentRecord, updateOnly = false): string {
  const values = updateOnly ? ["0", ""] : [String(record.body.byteLength), record.contentType];
  const labels = Object.entries(record.labels)
    .map(([name, value]) => (value.includes(",") ? `${name}="${value}"` : `${name}=${value}`))
    .sort();
  if (labels.length > 0) values.push(labels.join(","));
  return values.join(",");
}

function batchHeaders(records: readonly SentRecord[], updateOnly = false): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${API_TOKEN}`,
    "content-type": "application/octet-stream",
  };
  for (const record of records) headers[`x-reduct-time-${record.ts}`] = timeHeader(record, updateOnly);
  return headers;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request on its own connection. `chunks` are written one by one (chunked transfer: no
 * Content-Length unless given); `cutAfter` destroys the socket after that many chunks.
 */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: readonly Buffer[] = [],
  cutAfter?: number,
): Promise<Answer | "cut"> {
  const url = new URL(`/api/v1${path}`, STORAGE_URL);
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      const parts: Buffer[] = [];
      response.on("data", (part: Buffer) => parts.push(part));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(parts).toString() }),
      );
    });
    request.on("error", (error) => (cutAfter === undefined ? reject(error) : resolve("cut")));
    (async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (cutAfter !== undefined && i === cutAfter) {
          // Give the server time to take in what was sent, then drop the connection.
          await new Promise((r) => setTimeout(r, 1500));
          request.destroy();
          resolve("cut");
          return;
        }
        if (!request.write(chunk)) await new Promise((r) => request.once("drain", r));
      }
      request.end();
    })().catch(reject);
  });
}

async function answer(pending: Promise<Answer | "cut">): Promise<Answer> {
  const result = await pending;
  assert.notEqual(result, "cut");
  return result as Answer;
}

/** Splits `bytes` into pieces of `size`, as the sender's compressing stream hands them out. */
function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += size) out.push(bytes.subarray(offset, offset + size));
  return out;
}

/** The sender's batch write: records in ascending time, the body compressed as one stream. */
function writeBatch(records: readonly SentRecord[], coding: "gzip" | "zstd", cutAfter?: number) {
  const ordered = [...records].sort((a, b) => a.ts - b.ts);
  const body = compress(coding, Buffer.concat(ordered.map((r) => r.body)));
  const headers = { ...batchHeaders(records), "content-encoding": coding };
  return send("POST", `/b/${BUCKET}/${ENTRY}/batch`, headers, pieces(body, 8 * KIB), cutAfter);
}

const recordErrors = (headers: http.IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith("x-reduct-error-")));

describe("a ReductStore 1.21 replication sender's session against reduct-edge", () => {
  const client = makeClient();
  const sent = new Map<number, SentRecord>();
  const remember = (records: SentRecord[]) => {
    for (const record of records) sent.set(record.ts, { ...record, labels: { ...record.labels } });
    return records;
  };

  before(async () => cleanStorage(client));
  after(async () => cleanStorage(client));

  it("replays the session and every record reads back once, byte for byte, with its labels", async () => {
    const auth = { authorization: `Bearer ${API_TOKEN}` };

    // 1. Does the bucket exist? 404, and the target says which API it speaks.
    const missing = await answer(send("GET", `/b/${BUCKET}`, auth));
    assert.equal(missing.status, 404);
    assert.equal(missing.headers["x-reduct-error"], `Bucket '${BUCKET}' is not found`);

    // 2. Create it with defaults: no body, no content type.
    const created = await answer(send("POST", `/b/${BUCKET}`, auth));
    assert.deepEqual([created.status, created.headers["x-reduct-error"]], [200, undefined]);

    // 3. GET again: the sender compresses only for a target reporting x-reduct-api ≥ 1.21.
    const found = await answer(send("GET", `/b/${BUCKET}`, auth));
    assert.equal(found.status, 200);
    const [major, minor] = String(found.headers["x-reduct-api"]).split(".").map(Number);
    assert.ok((major ?? 0) > 1 || ((major ?? 0) === 1 && (minor ?? 0) >= 21), `x-reduct-api ${found.headers["x-reduct-api"]}`);
    assert.equal(JSON.parse(found.body).settings.max_block_records, 1024);

    // 4. A gzip batch, chunked, no Content-Length.
    const first = remember([
      { ts: 1_000_000, contentType: "image/jpeg", labels: { camera: "front", note: "a,b" }, body: reading(1) },
      { ts: 2_000_000, contentType: "image/jpeg", labels: { camera: "front" }, body: reading(2) },
      { ts: 3_000_000, contentType: "text/plain", labels: {}, body: reading(3) },
    ]);
    const written = await answer(writeBatch(first, "gzip"));
    assert.deepEqual([written.status, recordErrors(written.headers)], [200, {}]);

    // 5. The next batch (a 300 KiB record in the middle streams to R2 on its own) loses its
    // connection before the body's end; the sender sends the same batch again.
    const second = remember([
      { ts: 4_000_000, contentType: "text/plain", labels: { part: "4" }, body: reading(4) },
      { ts: 5_000_000, contentType: "application/octet-stream", labels: { part: "5" }, body: noise(300 * KIB, 5) },
      { ts: 6_000_000, contentType: "text/plain", labels: { part: "6" }, body: reading(6) },
    ]);
    const total = compress("gzip", Buffer.concat(second.map((r) => r.body))).byteLength;
    const cutAt = Math.ceil(total / (8 * KIB)) - 1; // all chunks but the last
    assert.equal(await writeBatch(second, "gzip", cutAt), "cut");
    const retried = await answer(writeBatch(second, "gzip"));
    assert.equal(retried.status, 200);
    const conflicts = recordErrors(retried.headers);
    // The record before the large one was written before the large one began: it is there.
    assert.ok("x-reduct-error-4000000" in conflicts, JSON.stringify(conflicts));
    for (const [name, value] of Object.entries(conflicts)) {
      const ts = name.slice("x-reduct-error-".length);
      assert.equal(value, `409,A record with timestamp ${ts} already exists`);
    }

    // 6. Label updates: the sender sends each record's labels with length 0 and no content type. A
    // record the target lacks answers 404 per record; the sender then writes it as a new record.
    const updated = [sent.get(1_000_000), sent.get(2_000_000)].filter((r) => r !== undefined);
    for (const record of updated) Object.assign(record.labels, { camera: "rear", reviewed: "yes" });
    const lacking: SentRecord = { ts: 7_000_000, contentType: "text/plain", labels: { late: "1" }, body: reading(7) };
    const patch = await answer(
      send("PATCH", `/b/${BUCKET}/${ENTRY}/batch`, { ...batchHeaders([...updated, lacking], true), "content-length": "0" }),
    );
    assert.equal(patch.status, 200);
    assert.deepEqual(Object.keys(recordErrors(patch.headers)), ["x-reduct-error-7000000"]);
    assert.match(String(patch.headers["x-reduct-error-7000000"]), /^404,/);

    // 7. A zstd batch: the record the update lacked, a 600 KiB record and a small one.
    const third = remember([
      lacking,
      { ts: 8_000_000, contentType: "application/octet-stream", labels: {}, body: noise(600 * KIB, 8) },
      { ts: 9_000_000, contentType: "text/plain", labels: { last: "true" }, body: reading(9) },
    ]);
    const zstdWritten = await answer(writeBatch(third, "zstd"));
    assert.deepEqual([zstdWritten.status, recordErrors(zstdWritten.headers)], [200, {}]);

    // Every record, read back with the official client.
    const bucket = await client.getBucket(BUCKET);
    for (const record of sent.values()) {
      const read = await bucket.beginRead(ENTRY, BigInt(record.ts));
      assert.equal(read.contentType, record.contentType, `content type of ${record.ts}`);
      assert.deepEqual(read.labels, record.labels, `labels of ${record.ts}`);
      assert.ok((await read.read()).equals(record.body), `bytes of ${record.ts}`);
    }
    const listed = (await all(bucket.query(ENTRY, undefined, undefined, { head: true }))).map((r) => Number(r.time));
    assert.deepEqual(
      listed,
      [...sent.keys()].sort((a, b) => a - b),
    );
  });
});
