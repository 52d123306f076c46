/**
 * Batched reads stay readable by Node's HTTP parser with its default 16 KiB header limit, which
 * reduct-js runs on, whatever `#batch_metadata_size` asks for: raw node:http requests (the harness
 * client, no reduct-js logic in between) read v1 and v2 batches of records with many labels to the
 * end of the query, and reduct-js reads the same query through its own parser.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseV1Read, parseV2Read } from "../../scripts/lib/batch-codec.ts";
import { createHttpClient, errorOf, type HttpResponse } from "../../scripts/lib/http-client.ts";
import { API_TOKEN, cleanStorage, makeClient, STORAGE_URL } from "./helpers.ts";

const RECORDS = 24;
const LABELS_PER_RECORD = 24;

async function readToEnd(read: () => Promise<HttpResponse>, times: (response: HttpResponse) => number[]): Promise<number[]> {
  const seen: number[] = [];
  for (let round = 0; round < 100; round++) {
    const response = await read();
    if (response.status === 204) return seen;
    assert.equal(response.status, 200, errorOf(response));
    seen.push(...times(response));
  }
  throw new Error("query did not end");
}

const v1Times = (response: HttpResponse) => parseV1Read(response.headers, response.body).records.map((record) => record.ts);
const v2Times = (response: HttpResponse) =>
  [...parseV2Read(response.headers, response.body).records.values()].flat().map((record) => record.ts);

describe("batched reads with many labels through node:http's default header limit", () => {
  const client = makeClient();
  const http = createHttpClient(STORAGE_URL, { token: API_TOKEN, connections: 1 });
  const bucketName = "batch-headers";
  const expected = Array.from({ length: RECORDS }, (_, i) => 1000 + i);

  async function queryId(path: string, body: Record<string, unknown>): Promise<string> {
    const response = await http.request("POST", `/api/v1${path}`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
    assert.equal(response.status, 200, errorOf(response));
    return String(JSON.parse(response.body.toString()).id);
  }

  before(async () => {
    await cleanStorage(client);
    const bucket = await client.createBucket(bucketName);
    for (let i = 0; i < RECORDS; i++) {
      const labels: Record<string, string> = {};
      for (let j = 0; j < LABELS_PER_RECORD; j++) labels[`r${i}l${j}`] = "v".repeat(300);
      const writer = await bucket.beginWrite("e", { ts: BigInt(1000 + i), labels });
      await writer.write("x");
    }
  });
  after(async () => {
    await cleanStorage(client);
    http.close();
  });

  for (const when of [{ "#batch_metadata_size": "64KB" }, { "#batch_metadata_size": 1000000 }, undefined]) {
    const what = when ? JSON.stringify(when) : "the default budget";
    it(`v1 …/batch?q= with ${what}`, async () => {
      const id = await queryId(`/b/${bucketName}/e/q`, when ? { when } : {});
      const seen = await readToEnd(() => http.request("GET", `/api/v1/b/${bucketName}/e/batch?q=${id}`), v1Times);
      assert.deepEqual(seen, expected);
    });

    it(`v2 /io/:bucket/read with ${what}`, async () => {
      const id = await queryId(`/io/${bucketName}/q`, { entries: ["e"], ...(when ? { when } : {}) });
      const seen = await readToEnd(
        () => http.request("GET", `/api/v1/io/${bucketName}/read`, { headers: { "x-reduct-query-id": id } }),
        v2Times,
      );
      assert.deepEqual(seen, expected);
    });

    it(`reduct-js reads the query with ${what}`, async () => {
      const bucket = await client.getBucket(bucketName);
      const seen: number[] = [];
      for await (const record of bucket.query("e", undefined, undefined, { when })) {
        await record.read();
        assert.equal(Object.keys(record.labels).length, LABELS_PER_RECORD);
        seen.push(Number(record.time));
      }
      assert.deepEqual(seen, expected);
    });
  }
});
