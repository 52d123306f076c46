/**
 * Batch protocol v1:
 * write, label update and removal of many records of one entry, through the Worker. Every status
 * and error string the endpoints return is pinned in a table, and refused requests are shown to
 * leave the bucket as it was.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SequentialBodyReader } from "../../src/api/body-reader";
import { SMALL_CHUNK_MAX_BYTES, SMALL_CHUNK_MAX_RECORDS, type WriteTarget, writeBatchBody } from "../../src/api/record-write";
import { api, expectError, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

const SHORT_BODY = "Content is shorter than expected: no more data to read";
const KIB = 1024;
const IO_TIMEOUT_MS = 30_000;

interface V1Record {
  ts: number;
  /** The header value after `<LEN>,`: content type and labels. */
  rest?: string;
  body: Uint8Array;
}

const text = (value: string) => new TextEncoder().encode(value);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** `x-reduct-time-<ts>` headers for records (whatever order they are given in). */
function timeHeaders(records: readonly V1Record[]): Record<string, string> {
  return Object.fromEntries(records.map((r) => [`x-reduct-time-${r.ts}`, `${r.body.byteLength},${r.rest ?? ""}`]));
}

/** A body the runtime hands over in the given chunks (no Content-Length: sent as a stream). */
function chunkedStream(bytes: Uint8Array, chunkSizes: readonly number[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      let offset = 0;
      let i = 0;
      while (offset < bytes.byteLength) {
        const size = chunkSizes[Math.min(i, chunkSizes.length - 1)] ?? bytes.byteLength;
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
        i++;
      }
      controller.close();
    },
  });
}

/** POSTs records as a v1 batch with the body in ascending timestamp order and a Content-Length. */
function writeBatch(bucket: string, entry: string, records: readonly V1Record[], extra: Record<string, string> = {}) {
  const ordered = [...records].sort((a, b) => a.ts - b.ts);
  return api("POST", `/b/${bucket}/${entry}/batch`, {
    headers: { "content-type": "application/octet-stream", ...timeHeaders(records), ...extra },
    body: concat(ordered.map((r) => r.body)),
  });
}

async function readRecord(bucket: string, entry: string, ts: number) {
  const response = await api("GET", `/b/${bucket}/${entry}?ts=${ts}`);
  return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
}

/** Asserts a record reads back with exactly these bytes. */
async function expectStored(bucket: string, entry: string, ts: number, body: Uint8Array): Promise<Response> {
  const { response, bytes } = await readRecord(bucket, entry, ts);
  expect({ ts, status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
    ts,
    status: 200,
    error: null,
  });
  expect(bytes.byteLength).toBe(body.byteLength);
  expect(await sha256(bytes)).toBe(await sha256(body));
  return response;
}

async function expectAbsent(bucket: string, entry: string, ts: number): Promise<void> {
  const { response } = await readRecord(bucket, entry, ts);
  expect({ ts, status: response.status }).toEqual({ ts, status: 404 });
}

/** Per-record error headers of a response, as a name → value map. */
function recordErrors(response: Response): Record<string, string> {
  return Object.fromEntries([...response.headers].filter(([name]) => name.startsWith("x-reduct-error-")));
}

/** What a client sees of a bucket: `GET /b/:bucket` (info, settings, entries). */
async function snapshot(bucket: string): Promise<unknown> {
  const response = await api("GET", `/b/${bucket}`);
  return { status: response.status, body: await response.json() };
}

/** A token that may read every bucket but write none (created once). */
const reader = { name: "", value: "" };

beforeAll(async () => {
  reader.name = uniqueName("batch-v1-reader");
  const response = await api("POST", `/tokens/${reader.name}`, { body: JSON.stringify({ permissions: { read: ["*"] } }) });
  expect(response.status).toBe(200);
  reader.value = ((await response.json()) as { value: string }).value;
});

const noWriteAccess = (bucket: string) => `Token '${reader.name}' doesn't have write access to bucket '${bucket}'`;

describe("POST /b/:bucket/:entry/batch", () => {
  it("writes the reduct-js batch example and reads each record back", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await api("POST", `/b/${bucket}/cam-1/batch`, {
      headers: {
        "content-type": "application/octet-stream",
        "x-reduct-time-1000": "9,application/octet-stream",
        "x-reduct-time-2000": "9,text/plain",
        "x-reduct-time-3000": "9,application/octet-stream,label1=value1,label2=value2",
      },
      body: "somedata1somedata2somedata3",
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({});
    expect(await response.text()).toBe("");

    const expected = [
      { ts: 1000, body: "somedata1", type: "application/octet-stream", labels: {} },
      { ts: 2000, body: "somedata2", type: "text/plain", labels: {} },
      { ts: 3000, body: "somedata3", type: "application/octet-stream", labels: { label1: "value1", label2: "value2" } },
    ];
    for (const record of expected) {
      const read = await expectStored(bucket, "cam-1", record.ts, text(record.body));
      expect(read.headers.get("content-type")).toBe(record.type);
      const labels = Object.fromEntries(
        [...read.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([n, v]) => [n.slice(15), v]),
      );
      expect(labels).toEqual(record.labels);
    }
  });

  it("reads labels with quoted commas, an empty content type as the default, and keeps empty labels", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await writeBatch(bucket, "e", [{ ts: 5, rest: ' , x="[a,b]",y=,z=1', body: text("abc") }]);
    expect(response.status).toBe(200);
    const read = await expectStored(bucket, "e", 5, text("abc"));
    expect(read.headers.get("content-type")).toBe("application/octet-stream");
    expect(read.headers.get("x-reduct-label-x")).toBe("[a,b]");
    expect(read.headers.get("x-reduct-label-y")).toBe("");
    expect(read.headers.get("x-reduct-label-z")).toBe("1");
  });

  // 3 × 10 B, one 300 KiB record (streamed to R2), 2 × 10 B; the body arrives in chunks that
  // straddle record boundaries in different ways.
  const mixed: V1Record[] = [
    { ts: 1, rest: "text/plain", body: bytesOf(10, 1) },
    { ts: 2, body: bytesOf(10, 2) },
    { ts: 3, body: bytesOf(10, 3) },
    { ts: 4, rest: "image/jpeg,kind=big", body: bytesOf(300 * KIB, 4) },
    { ts: 5, body: bytesOf(10, 5) },
    { ts: 6, body: bytesOf(10, 6) },
  ];
  const chunkings: Array<[string, number[] | null]> = [
    ["one fixed-length body", null],
    [
      "1-byte chunks for the small records, then 64 KiB",
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 64 * KIB],
    ],
    ["7-byte chunks, then one chunk spanning the large record's end and the tail", [7, 7, 7, 7, 300 * KIB + 5]],
    ["a chunk per 4 KiB + 3 bytes", [4 * KIB + 3]],
  ];
  for (const [name, chunkSizes] of chunkings) {
    it(`writes mixed small and large records byte for byte: ${name}`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const body = concat(mixed.map((r) => r.body));
      const response =
        chunkSizes === null
          ? await writeBatch(bucket, "mixed", mixed)
          : await api("POST", `/b/${bucket}/mixed/batch`, {
              headers: { ...timeHeaders(mixed), "x-reduct-content-length": String(body.byteLength) },
              body: chunkedStream(body, chunkSizes),
            });
      expect(response.status).toBe(200);
      expect(recordErrors(response)).toEqual({});
      for (const record of mixed) await expectStored(bucket, "mixed", record.ts, record.body);
      const large = await readRecord(bucket, "mixed", 4);
      expect(large.response.headers.get("content-type")).toBe("image/jpeg");
      expect(large.response.headers.get("x-reduct-label-kind")).toBe("big");
    });
  }

  it("sorts records by timestamp whatever the header order, without a Content-Length", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    // Header order is irrelevant; the body is in ascending timestamp order: 10 → "A", 20 → "BB", 300 → "CCC".
    const response = await api("POST", `/b/${bucket}/e/batch`, {
      headers: { "x-reduct-time-300": "3,", "x-reduct-time-10": "1,", "x-reduct-time-20": "2," },
      body: chunkedStream(text("ABBCCC"), [6]),
    });
    expect(response.status).toBe(200);
    await expectStored(bucket, "e", 10, text("A"));
    await expectStored(bucket, "e", 20, text("BB"));
    await expectStored(bucket, "e", 300, text("CCC"));
  });

  it("writes more than one RPC's worth of small records (4 MiB, 1000 records) in order", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const big: V1Record[] = Array.from({ length: 40 }, (_, i) => ({ ts: i + 1, body: bytesOf(120 * KIB, i + 1) }));
    const response = await writeBatch(bucket, "big", big);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({});
    for (const record of [big[0], big[33], big[34], big[39]])
      if (record) await expectStored(bucket, "big", record.ts, record.body);

    const many: V1Record[] = Array.from({ length: 1500 }, (_, i) => ({ ts: i + 1, body: bytesOf(3, i + 1) }));
    const second = await writeBatch(bucket, "many", many);
    expect(second.status).toBe(200);
    expect(recordErrors(second)).toEqual({});
    for (const ts of [1, 1000, 1001, 1500]) await expectStored(bucket, "many", ts, bytesOf(3, ts));
    const info = (await snapshot(bucket)) as { body: { entries: Array<{ name: string; record_count: number }> } };
    expect(info.body.entries.find((entry) => entry.name === "many")?.record_count).toBe(1500);
  });

  it("reports a duplicate per record (409, reduct-js exact) and writes the others", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry", 1_000_000, "original");
    const response = await writeBatch(bucket, "entry", [
      { ts: 1_000_000, body: text("dup") },
      { ts: 2_000_000, body: text("new") },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-1000000": "409,A record with timestamp 1000000 already exists",
    });
    await expectStored(bucket, "entry", 1_000_000, text("original"));
    await expectStored(bucket, "entry", 2_000_000, text("new"));
  });

  it("skips the bytes of a refused large record so later records stay aligned", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const original = bytesOf(200 * KIB, 9);
    await putRecord(bucket, "e", 2, original);
    const records: V1Record[] = [
      { ts: 1, body: bytesOf(10, 1) },
      { ts: 2, body: bytesOf(300 * KIB, 2) },
      { ts: 3, body: bytesOf(10, 3) },
      { ts: 4, body: bytesOf(150 * KIB, 4) },
    ];
    const response = await writeBatch(bucket, "e", records);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-2": "409,A record with timestamp 2 already exists" });
    await expectStored(bucket, "e", 1, bytesOf(10, 1));
    await expectStored(bucket, "e", 2, original);
    await expectStored(bucket, "e", 3, bytesOf(10, 3));
    await expectStored(bucket, "e", 4, bytesOf(150 * KIB, 4));
  });

  it("reports HARD quota refusals per record (400) and writes what fits", async () => {
    const bucket = uniqueName();
    // 40 content bytes + a ≥ 21-byte descriptor: the first record fits into 100 bytes, a second cannot.
    await createBucket(bucket, { quota_type: "HARD", quota_size: 100 });
    const records: V1Record[] = [1, 2, 3].map((ts) => ({ ts, body: bytesOf(40, ts) }));
    const response = await writeBatch(bucket, "q", records);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-2": `400,Quota of '${bucket}' exceeded`,
      "x-reduct-error-3": `400,Quota of '${bucket}' exceeded`,
    });
    await expectStored(bucket, "q", 1, bytesOf(40, 1));
    await expectAbsent(bucket, "q", 2);
    await expectAbsent(bucket, "q", 3);
  });

  it("refuses a large record over a HARD quota and still writes a later small one", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "HARD", quota_size: 400_000 });
    const records: V1Record[] = [
      { ts: 1, body: bytesOf(10, 1) },
      { ts: 2, body: bytesOf(300 * KIB, 2) },
      { ts: 3, body: bytesOf(300 * KIB, 3) },
      { ts: 4, body: bytesOf(10, 4) },
    ];
    const response = await writeBatch(bucket, "q", records);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-3": `400,Quota of '${bucket}' exceeded` });
    await expectStored(bucket, "q", 2, bytesOf(300 * KIB, 2));
    await expectAbsent(bucket, "q", 3);
    await expectStored(bucket, "q", 4, bytesOf(10, 4));
  });

  it("reports $meta records without a key per record (422)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await writeBatch(bucket, "a/$meta", [
      { ts: 1, rest: "application/json,key=one", body: text("{}") },
      { ts: 2, rest: "application/json", body: text("{}") },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-2": "422,System entry 'a/$meta' records must contain label 'key'",
    });
    await expectStored(bucket, "a/$meta", 1, text("{}"));
  });

  it("reports a missing bucket per record with an overall 200 (QUIRK)", async () => {
    const bucket = uniqueName("missing");
    const response = await writeBatch(bucket, "e", [
      { ts: 1, body: text("a") },
      { ts: 2, body: bytesOf(200 * KIB) },
      { ts: 3, body: text("c") },
    ]);
    expect(response.status).toBe(200);
    const error = `404,Bucket '${bucket}' is not found`;
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-1": error,
      "x-reduct-error-2": error,
      "x-reduct-error-3": error,
    });
  });

  it("accepts an empty batch", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const before = await snapshot(bucket);
    const response = await api("POST", `/b/${bucket}/e/batch`, { body: "" });
    expect(response.status).toBe(200);
    expect(await snapshot(bucket)).toEqual(before);
  });

  // Where the body breaks: the records fully received before it are written, the rest are absent
  // and can be written again.
  const truncations: Array<{ name: string; records: V1Record[]; sent: number; written: number[]; absent: number[] }> = [
    {
      name: "inside a small record",
      records: [1, 2, 3].map((ts) => ({ ts, body: bytesOf(10, ts) })),
      sent: 15,
      written: [1],
      absent: [2, 3],
    },
    {
      name: "inside a large record",
      records: [
        { ts: 1, body: bytesOf(10, 1) },
        { ts: 2, body: bytesOf(10, 2) },
        { ts: 3, body: bytesOf(300 * KIB, 3) },
        { ts: 4, body: bytesOf(10, 4) },
      ],
      sent: 20 + 100 * KIB,
      written: [1, 2],
      absent: [3, 4],
    },
    {
      name: "right after a large record",
      records: [
        { ts: 1, body: bytesOf(300 * KIB, 1) },
        { ts: 2, body: bytesOf(10, 2) },
      ],
      sent: 300 * KIB,
      written: [1],
      absent: [2],
    },
    {
      name: "inside the skipped bytes of a refused record",
      records: [
        { ts: 1, body: bytesOf(10, 1) },
        { ts: 7, body: bytesOf(200 * KIB, 7) }, // a duplicate: refused, its bytes skipped
        { ts: 8, body: bytesOf(10, 8) },
      ],
      sent: 10 + 50 * KIB,
      written: [1],
      absent: [8],
    },
    {
      name: "before any byte",
      records: [{ ts: 1, body: bytesOf(10, 1) }],
      sent: 0,
      written: [],
      absent: [1],
    },
  ];
  for (const testCase of truncations) {
    it(`a body that ends ${testCase.name} → 400; earlier records stay, later ones are absent and re-writable`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      await putRecord(bucket, "e", 7, bytesOf(200 * KIB, 70)); // only the "refused record" case uses it
      const full = concat(testCase.records.map((r) => r.body));
      const response = await api("POST", `/b/${bucket}/e/batch`, {
        headers: { ...timeHeaders(testCase.records), "x-reduct-content-length": String(full.byteLength) },
        body: chunkedStream(full.subarray(0, testCase.sent), [64 * KIB]),
      });
      await expectError(response, 400, SHORT_BODY);
      for (const ts of testCase.written) {
        const record = testCase.records.find((r) => r.ts === ts);
        if (record) await expectStored(bucket, "e", ts, record.body);
      }
      for (const ts of testCase.absent) await expectAbsent(bucket, "e", ts);
      const again = testCase.records.filter((r) => testCase.absent.includes(r.ts));
      const retry = await writeBatch(bucket, "e", again);
      expect(retry.status).toBe(200);
      expect(recordErrors(retry)).toEqual({});
      for (const record of again) await expectStored(bucket, "e", record.ts, record.body);
      await expectStored(bucket, "e", 7, bytesOf(200 * KIB, 70));
    });
  }
});

/** A request that must fail as a whole: exact status and message, and the bucket unchanged. */
interface ErrorCase {
  name: string;
  request: (bucket: string) => Promise<Response>;
  status: number;
  message: (bucket: string) => string;
}

const post = (bucket: string, entry: string, headers: Record<string, string>, body: BodyInit | null = "x") =>
  api("POST", `/b/${bucket}/${entry}/batch`, { headers, body });

const writeErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) => api("POST", `/b/${b}/e/batch`, { token: reader.value, headers: { "x-reduct-time-1": "1," }, body: "x" }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "time header that is not a number",
    request: (b) => post(b, "e", { "x-reduct-time-abc": "1," }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-abc': must be an unix timestamp in microseconds",
  },
  {
    name: "timestamp above 2^53 - 1",
    request: (b) => post(b, "e", { "x-reduct-time-9007199254740992": "1," }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-9007199254740992': must be an unix timestamp in microseconds",
  },
  {
    name: "the same timestamp twice",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1,", "x-reduct-time-01": "0," }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-1': timestamp 1 appears twice",
  },
  {
    name: "value without a comma",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1" }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "bad size",
    request: (b) => post(b, "e", { "x-reduct-time-1": "x,text/plain" }),
    status: 422,
    message: () => "Invalid content length",
  },
  {
    name: "unterminated quote",
    request: (b) => post(b, "e", { "x-reduct-time-1": '1,text/plain,a="b' }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "reserved label name",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1,text/plain,@a=b" }),
    status: 422,
    message: () => "Label names must not start with '@': reserved for computed labels",
  },
  {
    name: "label name over the cap",
    request: (b) => post(b, "e", { "x-reduct-time-1": `1,text/plain,${"n".repeat(257)}=v` }),
    status: 422,
    message: () => "Label names must be at most 256 bytes",
  },
  {
    name: "value with a byte above ASCII",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1,text/plain,a=\u00e9" }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "malformed content type",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1,text" }),
    status: 422,
    message: () => "Malformed content-type header: missing '/' between type and subtype in 'text'",
  },
  {
    name: "Content-Length not the sum of the records",
    request: (b) => post(b, "e", { "x-reduct-time-1": "1,", "x-reduct-time-2": "2," }, "xyz!"),
    status: 422,
    message: () => "content-length header does not match the sum of the content-lengths in the headers",
  },
  {
    name: "x-reduct-content-length not the sum of the records",
    request: (b) => post(b, "e", { "x-reduct-time-1": "3,", "x-reduct-content-length": "2" }, chunkedStream(text("xyz"), [3])),
    status: 422,
    message: () => "content-length header does not match the sum of the content-lengths in the headers",
  },
  {
    name: "x-reduct-content-length not a number",
    request: (b) => post(b, "e", { "x-reduct-time-1": "3,", "x-reduct-content-length": "abc" }, chunkedStream(text("xyz"), [3])),
    status: 422,
    message: () => "x-reduct-content-length header must be a number",
  },
  {
    name: "invalid entry name",
    request: (b) => post(b, "a.b", { "x-reduct-time-1": "1," }),
    status: 422,
    message: () => "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'",
  },
  {
    name: "entry name with an empty segment",
    request: (b) => post(b, "a//b", { "x-reduct-time-1": "1," }),
    status: 422,
    message: () => "Entry name must be non-empty and must not contain empty path segments",
  },
  {
    name: "record over the size limit",
    request: (b) =>
      post(b, "e", { "x-reduct-time-1": "104857601,", "x-reduct-content-length": "104857601" }, chunkedStream(text("x"), [1])),
    status: 413,
    message: () => "Record of 104857601 bytes is larger than the limit of 104857600 bytes",
  },
  {
    name: "headers over the batch budget",
    request: (b) => post(b, "e", { "x-reduct-time-1": `1,text/plain,a=${"v".repeat(520_000)}` }),
    status: 431,
    message: () => "Batched headers must be at most 512000 bytes in total",
  },
  {
    name: "body shorter than the records",
    request: (b) => post(b, "e", { "x-reduct-time-1": "5,", "x-reduct-content-length": "5" }, chunkedStream(text("xyz"), [3])),
    status: 400,
    message: () => SHORT_BODY,
  },
];

const patchErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) => api("PATCH", `/b/${b}/e/batch`, { token: reader.value, headers: { "x-reduct-time-1": "0,,a=b" } }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "missing bucket",
    request: () => api("PATCH", "/b/no-such-bucket-v1/e/batch", { headers: { "x-reduct-time-1": "0,,a=b" } }),
    status: 404,
    message: () => "Bucket 'no-such-bucket-v1' is not found",
  },
  {
    name: "missing entry",
    request: (b) => api("PATCH", `/b/${b}/ghost/batch`, { headers: { "x-reduct-time-1": "0,,a=b" } }),
    status: 404,
    message: (b) => `Entry 'ghost' not found in bucket '${b}'`,
  },
  {
    name: "value without a comma",
    request: (b) => api("PATCH", `/b/${b}/e/batch`, { headers: { "x-reduct-time-1": "0", "x-reduct-time-2": "0,,a=b" } }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "time header that is not a number",
    request: (b) => api("PATCH", `/b/${b}/e/batch`, { headers: { "x-reduct-time-x": "0,,a=b" } }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-x': must be an unix timestamp in microseconds",
  },
];

const deleteErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) => api("DELETE", `/b/${b}/e/batch`, { token: reader.value, headers: { "x-reduct-time-1": "" } }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "missing bucket",
    request: () => api("DELETE", "/b/no-such-bucket-v1/e/batch", { headers: { "x-reduct-time-1": "" } }),
    status: 404,
    message: () => "Bucket 'no-such-bucket-v1' is not found",
  },
  {
    name: "missing entry",
    request: (b) => api("DELETE", `/b/${b}/ghost/batch`, { headers: { "x-reduct-time-1": "" } }),
    status: 404,
    message: (b) => `Entry 'ghost' not found in bucket '${b}'`,
  },
  {
    name: "$meta entry",
    request: (b) => api("DELETE", `/b/${b}/e/$meta/batch`, { headers: { "x-reduct-time-1": "" } }),
    status: 422,
    message: () => "Can't delete records from system entry 'e/$meta'; use label update with remove=true",
  },
  {
    name: "time header that is not a number",
    request: (b) => api("DELETE", `/b/${b}/e/batch`, { headers: { "x-reduct-time-1": "", "x-reduct-time-1e3": "" } }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-1e3': must be an unix timestamp in microseconds",
  },
];

describe("v1 batch requests refused as a whole change nothing", () => {
  const tables: Array<[string, ErrorCase[]]> = [
    ["POST", writeErrors],
    ["PATCH", patchErrors],
    ["DELETE", deleteErrors],
  ];
  for (const [method, cases] of tables) {
    for (const testCase of cases) {
      it(`${method}: ${testCase.name} → ${testCase.status}`, async () => {
        const bucket = uniqueName();
        await createBucket(bucket);
        await putRecord(bucket, "e", 1, "one", { labels: { a: "1" } });
        await putRecord(bucket, "e/$meta", 1, "{}", { labels: { key: "k" } });
        const before = await snapshot(bucket);
        await expectError(await testCase.request(bucket), testCase.status, testCase.message(bucket));
        expect(await snapshot(bucket)).toEqual(before);
        const still = await expectStored(bucket, "e", 1, text("one"));
        expect(still.headers.get("x-reduct-label-a")).toBe("1");
      });
    }
  }
});

describe("PATCH /b/:bucket/:entry/batch", () => {
  it("sets, overwrites and removes labels of many records", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, "a", { labels: { a: "1", b: "2" } });
    await putRecord(bucket, "e", 2000, "b", { labels: { a: "1", b: "2" } });
    const response = await api("PATCH", `/b/${bucket}/e/batch`, {
      headers: { "x-reduct-time-1000": "0,,x=z,a=,1=2", "x-reduct-time-2000": "0,,b=3" },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({});
    const first = await expectStored(bucket, "e", 1000, text("a"));
    expect(labelsOf(first)).toEqual({ b: "2", x: "z", "1": "2" });
    const second = await expectStored(bucket, "e", 2000, text("b"));
    expect(labelsOf(second)).toEqual({ a: "1", b: "3" });
  });

  it("reports a missing record per timestamp (404) and updates the others", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "a");
    const response = await api("PATCH", `/b/${bucket}/e/batch`, {
      headers: { "x-reduct-time-1": "0,,label1=value1,label2=", "x-reduct-time-3": "0,,label1=value1" },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-3": `404,Record 3 not found in entry ${bucket}/e` });
    expect(labelsOf(await expectStored(bucket, "e", 1, text("a")))).toEqual({ label1: "value1" });
  });
});

describe("DELETE /b/:bucket/:entry/batch", () => {
  it("removes the named records and reports the missing one", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry", 1000, "a");
    await putRecord(bucket, "entry", 1001, bytesOf(200 * KIB));
    await putRecord(bucket, "entry", 1003, "keep");
    const response = await api("DELETE", `/b/${bucket}/entry/batch`, {
      headers: { "x-reduct-time-1000": "", "x-reduct-time-1001": "", "x-reduct-time-1002": "" },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-1002": `404,Record 1002 not found in entry ${bucket}/entry` });
    await expectAbsent(bucket, "entry", 1000);
    await expectAbsent(bucket, "entry", 1001);
    await expectStored(bucket, "entry", 1003, text("keep"));
  });
});

function labelsOf(response: Response): Record<string, string> {
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([name, value]) => [name.slice(15), value]),
  );
}

describe("batch body streaming (shared by v1 and v2)", () => {
  const body100 = bytesOf(100, 42);
  const readerChunkings: number[][] = [[100], [1], [3, 97], [10, 10, 80], [33]];

  for (const chunkSizes of readerChunkings) {
    it(`SequentialBodyReader hands out exact reads, skips and sub-streams over chunks ${chunkSizes.join("/")}`, async () => {
      const reader = new SequentialBodyReader(chunkedStream(body100, chunkSizes), IO_TIMEOUT_MS);
      expect(new Uint8Array(await reader.readExactly(3))).toEqual(body100.slice(0, 3));
      await reader.skip(10);
      const taken = new Uint8Array(await new Response(reader.take(50)).arrayBuffer());
      expect(taken).toEqual(body100.slice(13, 63));
      expect(new Uint8Array(await reader.readExactly(0))).toEqual(new Uint8Array(0));
      expect(new Uint8Array(await reader.readExactly(37))).toEqual(body100.slice(63, 100));
      await expect(reader.readExactly(1)).rejects.toThrow(SHORT_BODY);
    });
  }

  for (const chunkSizes of readerChunkings) {
    it(`SequentialBodyReader.readBuffered takes only what was received, mixed with awaited reads (${chunkSizes.join("/")})`, async () => {
      const reader = new SequentialBodyReader(chunkedStream(body100, chunkSizes), IO_TIMEOUT_MS);
      expect(reader.readBuffered(1)).toBeNull(); // nothing received yet
      const pieces: Uint8Array[] = [];
      let offset = 0;
      for (const size of [5, 0, 20, 1, 30, 44]) {
        const buffered = reader.readBuffered(size);
        pieces.push(new Uint8Array(buffered ?? (await reader.readExactly(size))));
        offset += size;
      }
      expect(offset).toBe(100);
      let at = 0;
      for (const piece of pieces) {
        expect(piece).toEqual(body100.slice(at, at + piece.byteLength));
        at += piece.byteLength;
      }
      expect(reader.readBuffered(1)).toBeNull();
      await expect(reader.readExactly(1)).rejects.toThrow(SHORT_BODY);
    });
  }

  it("SequentialBodyReader: skipping or streaming past the end fails with the short-body error", async () => {
    await expect(new SequentialBodyReader(chunkedStream(body100, [7]), IO_TIMEOUT_MS).skip(101)).rejects.toThrow(SHORT_BODY);
    await expect(
      new Response(new SequentialBodyReader(chunkedStream(body100, [7]), IO_TIMEOUT_MS).take(101)).arrayBuffer(),
    ).rejects.toThrow(SHORT_BODY);
    await expect(new SequentialBodyReader(null, IO_TIMEOUT_MS).readExactly(1)).rejects.toThrow(SHORT_BODY);
  });

  it("sends small records in bounded RPC chunks and large ones to R2, in body order", async () => {
    const calls: Array<{ kind: "write"; ts: number[]; bytes: number } | { kind: "reserve" | "commit"; ts: number }> = [];
    const stored = new Map<number, Uint8Array>();
    const keys = new Map<string, Uint8Array>();
    const stub = {
      async writeRecords(items: Array<{ meta: { ts: number }; payload: ArrayBuffer }>) {
        calls.push({
          kind: "write",
          ts: items.map((i) => i.meta.ts),
          bytes: items.reduce((s, i) => s + i.payload.byteLength, 0),
        });
        for (const item of items) stored.set(item.meta.ts, new Uint8Array(item.payload));
        return { ok: true, outcomes: items.map(() => ({ ok: true })) };
      },
      async reserveUpload(meta: { ts: number }) {
        calls.push({ kind: "reserve", ts: meta.ts });
        return { ok: true, objectKey: `k${meta.ts}`, leaseMs: 60_000 };
      },
      async commitUpload(_entry: string, ts: number, key: string) {
        calls.push({ kind: "commit", ts });
        const bytes = keys.get(key);
        if (bytes) stored.set(ts, bytes);
        return { ok: true };
      },
      async abortUpload() {
        throw new Error("not expected");
      },
    };
    const r2 = {
      async put(key: string, stream: ReadableStream<Uint8Array>) {
        keys.set(key, new Uint8Array(await new Response(stream).arrayBuffer()));
        return {};
      },
    };
    // 40 × 120 KiB (4.7 MiB), one 200 KiB record, 1500 × 3 B: at least two chunks by bytes, two by count.
    const sizes = [...Array<number>(40).fill(120 * KIB), 200 * KIB, ...Array<number>(1500).fill(3)];
    const items = sizes.map((size, i) => ({
      meta: { entry: "e", ts: i + 1, size, contentType: "application/octet-stream", labels: {} },
    }));
    const bodies = sizes.map((size, i) => bytesOf(size, i + 1));
    const target = {
      bucket: "b",
      stub: stub as unknown as WriteTarget["stub"],
      records: r2 as unknown as R2Bucket,
      ioTimeoutMs: IO_TIMEOUT_MS,
    };
    const failures = await writeBatchBody(target, chunkedStream(concat(bodies), [64 * KIB + 5]), items);

    expect(failures).toEqual([]);
    const writes = calls.filter((call) => call.kind === "write");
    expect(writes.length).toBeGreaterThanOrEqual(4);
    for (const call of writes) {
      expect(call.bytes).toBeLessThanOrEqual(SMALL_CHUNK_MAX_BYTES);
      expect(call.ts.length).toBeLessThanOrEqual(SMALL_CHUNK_MAX_RECORDS);
    }
    // Body order: every record handed over once, in timestamp order, the large one between its neighbours.
    const order = calls.flatMap((call) => (call.kind === "write" ? call.ts : call.kind === "reserve" ? [call.ts] : []));
    expect(order).toEqual(items.map((item) => item.meta.ts));
    expect(calls.findIndex((call) => call.kind === "commit")).toBe(calls.findIndex((call) => call.kind === "reserve") + 1);
    for (const [i, body] of bodies.entries()) expect(stored.get(i + 1)).toEqual(body);
  }, 240_000); // CPU-bound: many requests through the Worker (125 s seen at load 13 on 2 cores)
});
