/**
 * Batched reads stay readable by Node's HTTP parser with its default 16 KiB header limit, which
 * reduct-js runs on, whatever `#batch_metadata_size` asks for: raw node:http requests (no client
 * logic in between) read v1 and v2 batches of records with many labels to the end of the query,
 * and reduct-js reads the same query through its own parser.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { API_TOKEN, cleanStorage, makeClient, STORAGE_URL } from "./helpers.mjs";

const RECORDS = 24;
const LABELS_PER_RECORD = 24;

/** One request with node:http's defaults; resolves with status, headers and body, or rejects. */
function request(method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(`/api/v1${path}`, STORAGE_URL),
      { method, headers: { authorization: `Bearer ${API_TOKEN}`, ...headers } },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function queryId(path, body) {
  const response = await request("POST", path, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  assert.equal(response.status, 200, String(response.headers["x-reduct-error"]));
  return String(JSON.parse(response.body.toString()).id);
}

async function readToEnd(read, times) {
  const seen = [];
  for (let round = 0; round < 100; round++) {
    const response = await read();
    if (response.status === 204) return seen;
    assert.equal(response.status, 200, String(response.headers["x-reduct-error"]));
    seen.push(...times(response.headers));
  }
  throw new Error("query did not end");
}

const v1Times = (headers) =>
  Object.keys(headers)
    .filter((name) => name.startsWith("x-reduct-time-"))
    .map((name) => Number(name.slice(14)));
const v2Times = (headers) =>
  Object.keys(headers)
    .filter((name) => /^x-reduct-\d+-\d+$/.test(name))
    .map((name) => Number(headers["x-reduct-start-ts"]) + Number(name.split("-")[3]));

describe("batched reads with many labels through node:http's default header limit", () => {
  const client = makeClient();
  const bucketName = "batch-headers";
  const expected = Array.from({ length: RECORDS }, (_, i) => 1000 + i);

  before(async () => {
    await cleanStorage(client);
    const bucket = await client.createBucket(bucketName);
    for (let i = 0; i < RECORDS; i++) {
      const labels = {};
      for (let j = 0; j < LABELS_PER_RECORD; j++) labels[`r${i}l${j}`] = "v".repeat(300);
      const writer = await bucket.beginWrite("e", { ts: BigInt(1000 + i), labels });
      await writer.write("x");
    }
  });
  after(async () => {
    await cleanStorage(client);
  });

  for (const when of [{ "#batch_metadata_size": "64KB" }, { "#batch_metadata_size": 1000000 }, undefined]) {
    const what = when ? JSON.stringify(when) : "the default budget";
    it(`v1 …/batch?q= with ${what}`, async () => {
      const id = await queryId(`/b/${bucketName}/e/q`, when ? { when } : {});
      const seen = await readToEnd(() => request("GET", `/b/${bucketName}/e/batch?q=${id}`), v1Times);
      assert.deepEqual(seen, expected);
    });

    it(`v2 /io/:bucket/read with ${what}`, async () => {
      const id = await queryId(`/io/${bucketName}/q`, { entries: ["e"], ...(when ? { when } : {}) });
      const seen = await readToEnd(
        () => request("GET", `/io/${bucketName}/read`, { headers: { "x-reduct-query-id": id } }),
        v2Times,
      );
      assert.deepEqual(seen, expected);
    });

    it(`reduct-js reads the query with ${what}`, async () => {
      const bucket = await client.getBucket(bucketName);
      const seen = [];
      for await (const record of bucket.query("e", undefined, undefined, { when })) {
        await record.read();
        assert.equal(Object.keys(record.labels).length, LABELS_PER_RECORD);
        seen.push(Number(record.time));
      }
      assert.deepEqual(seen, expected);
    });
  }
});
