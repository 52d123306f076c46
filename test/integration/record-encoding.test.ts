/**
 * Record bytes leave the Worker marked so that neither Cloudflare's edge nor the local runtime
 * compresses them (which would drop Content-Length): on every read path, GET and HEAD, for content
 * types the platform compresses and for ones it does not. The black-box suite checks the same
 * through `npm start` with raw HTTP, where the compression would really happen.
 */
import { describe, expect, it } from "vitest";
import { api, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord } from "../helpers/records";

const CONTENT_TYPES = [
  "text/plain",
  "text/plain; charset=utf-8",
  "application/json",
  "application/xml",
  "image/svg+xml",
  "application/javascript",
  "text/html",
  "text/csv",
  "application/octet-stream",
  "image/jpeg",
];

/** Above the edge's minimum size for compression, staged in the bucket object. */
const SMALL = 300;
/** Above 128 KiB: the record gets its own R2 object, read by a ranged get. */
const LARGE = 200 * 1024;
const CASES: Array<[string, number]> = [
  ...CONTENT_TYPES.map((type): [string, number] => [type, SMALL]),
  ...["text/plain", "application/json", "image/jpeg"].map((type): [string, number] => [type, LARGE]),
];

interface ReadPath {
  name: string;
  /** The request path; queries are created anew for each read. */
  path: (bucket: string) => Promise<{ path: string; headers?: Record<string, string> }>;
}

async function createQuery(bucket: string, entry: string | null): Promise<number> {
  const response = entry
    ? await api("POST", `/b/${bucket}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY" }) })
    : await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", entries: ["e"] }) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: number }).id;
}

const READ_PATHS: ReadPath[] = [
  { name: "single ?ts=", path: async (b) => ({ path: `/b/${b}/e?ts=1000` }) },
  { name: "single latest", path: async (b) => ({ path: `/b/${b}/e` }) },
  { name: "single ?q=", path: async (b) => ({ path: `/b/${b}/e?q=${await createQuery(b, "e")}` }) },
  { name: "v1 batch", path: async (b) => ({ path: `/b/${b}/e/batch?q=${await createQuery(b, "e")}` }) },
  {
    name: "v2 /io read",
    path: async (b) => ({ path: `/io/${b}/read`, headers: { "x-reduct-query-id": String(await createQuery(b, null)) } }),
  },
];

describe("record bytes are never re-encoded by the platform", () => {
  it.each(CASES)("marks every read path, GET and HEAD: %s, %i B", async (contentType, size) => {
    const bucket = uniqueName("enc");
    await createBucket(bucket);
    const bytes = bytesOf(size, size + contentType.length);
    await putRecord(bucket, "e", 1000, bytes, { contentType });
    for (const read of READ_PATHS) {
      for (const method of ["GET", "HEAD"]) {
        const { path, headers } = await read.path(bucket);
        const response = await api(method, path, { headers: { "accept-encoding": "gzip, br, zstd", ...headers } });
        const body = new Uint8Array(await response.arrayBuffer());
        const where = `${read.name} ${method} ${contentType} ${size} B`;
        expect(response.status, where).toBe(200);
        expect(
          {
            encoding: response.headers.get("content-encoding"),
            cacheControl: response.headers.get("cache-control"),
            length: response.headers.get("content-length"),
          },
          where,
        ).toEqual({ encoding: "identity", cacheControl: "no-transform", length: String(size) });
        if (method === "GET") expect(body, where).toEqual(bytes);
        else expect(body.byteLength, where).toBe(0);
      }
    }
  });

  it("leaves responses without record bytes alone", async () => {
    const bucket = uniqueName("enc");
    await createBucket(bucket);
    const info = await api("GET", `/b/${bucket}`, { headers: { "accept-encoding": "gzip, br" } });
    await info.arrayBuffer();
    expect(info.headers.get("content-encoding")).toBeNull();
    await putRecord(bucket, "e", 1000, "x".repeat(300), { contentType: "text/plain" });
    const query = await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY", start: 5000 }) });
    const { id } = (await query.json()) as { id: number };
    const empty = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
    expect(empty.status).toBe(204);
    expect(empty.headers.get("content-encoding")).toBeNull();
  });
});
