/**
 * Batch protocol v2, write side of `/io`: multi-entry write, label update and removal through the Worker. Every
 * status and error string is pinned in a table, and refused requests leave the bucket unchanged.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

const SHORT_BODY = "Content is shorter than expected: no more data to read";
const KIB = 1024;

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

/** A body the runtime hands over in the given chunks, the last size repeating (no Content-Length). */
function chunkedStream(bytes: Uint8Array, chunkSizes: readonly number[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      let offset = 0;
      for (let i = 0; offset < bytes.byteLength; i++) {
        const size = chunkSizes[Math.min(i, chunkSizes.length - 1)] ?? bytes.byteLength;
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
      }
      controller.close();
    },
  });
}

interface V2Record {
  entry: number;
  delta: number;
  /** Header value after `<LEN>`; undefined: a bare LEN. */
  rest?: string;
  body: Uint8Array;
}

/** Headers of a v2 write; the body is in (entry index, delta) order, as the server reads it. */
function v2Request(entries: string[], startTs: number, records: readonly V2Record[], extra: Record<string, string> = {}) {
  const headers: Record<string, string> = {
    "x-reduct-entries": entries.join(","),
    "x-reduct-start-ts": String(startTs),
    ...extra,
  };
  for (const r of records) {
    headers[`x-reduct-${r.entry}-${r.delta}`] = r.rest === undefined ? `${r.body.byteLength}` : `${r.body.byteLength},${r.rest}`;
  }
  const ordered = [...records].sort((a, b) => a.entry - b.entry || a.delta - b.delta);
  return { headers, body: concat(ordered.map((r) => r.body)) };
}

function ioWrite(
  bucket: string,
  entries: string[],
  startTs: number,
  records: readonly V2Record[],
  extra: Record<string, string> = {},
) {
  const { headers, body } = v2Request(entries, startTs, records, extra);
  return api("POST", `/io/${bucket}/write`, { headers: { "content-type": "application/octet-stream", ...headers }, body });
}

async function readRecord(bucket: string, entry: string, ts: number) {
  const response = await api("GET", `/b/${bucket}/${entry}?ts=${ts}`);
  return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
}

async function expectStored(bucket: string, entry: string, ts: number, body: Uint8Array): Promise<Response> {
  const { response, bytes } = await readRecord(bucket, entry, ts);
  expect({ entry, ts, status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
    entry,
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
  expect({ entry, ts, status: response.status }).toEqual({ entry, ts, status: 404 });
}

function recordErrors(response: Response): Record<string, string> {
  return Object.fromEntries([...response.headers].filter(([name]) => name.startsWith("x-reduct-error-")));
}

function labelsOf(response: Response): Record<string, string> {
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([name, value]) => [name.slice(15), value]),
  );
}

async function snapshot(bucket: string): Promise<unknown> {
  const response = await api("GET", `/b/${bucket}`);
  return { status: response.status, body: await response.json() };
}

/** A token that may read every bucket but write none (created once). */
const reader = { name: "", value: "" };

beforeAll(async () => {
  reader.name = uniqueName("batch-v2-reader");
  const response = await api("POST", `/tokens/${reader.name}`, { body: JSON.stringify({ permissions: { read: ["*"] } }) });
  expect(response.status).toBe(200);
  reader.value = ((await response.json()) as { value: string }).value;
});

const noWriteAccess = (bucket: string) => `Token '${reader.name}' doesn't have write access to bucket '${bucket}'`;

describe("POST /io/:bucket/write", () => {
  it("writes ReductStore's documented example: delta-compressed content types and indexed labels", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: {
        "x-reduct-entries": "cam-1,robot%2Farm",
        "x-reduct-start-ts": "1700000000000000",
        "x-reduct-labels": "room,tags",
        "x-reduct-0-0": "3,text/plain,0=lab",
        "x-reduct-0-100000": "2",
        "x-reduct-1-50000": '5,application/octet-stream,0=line,1="a,b"',
      },
      body: "AAABBCCCCC",
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(response.headers.get("x-reduct-entries")).toBe("cam-1,robot%2Farm");
    expect(response.headers.get("x-reduct-start-ts")).toBe("1700000000000000");
    expect(recordErrors(response)).toEqual({});

    const expected = [
      { entry: "cam-1", ts: 1700000000000000, body: "AAA", type: "text/plain", labels: { room: "lab" } },
      { entry: "cam-1", ts: 1700000000100000, body: "BB", type: "text/plain", labels: { room: "lab" } },
      {
        entry: "robot/arm",
        ts: 1700000000050000,
        body: "CCCCC",
        type: "application/octet-stream",
        labels: { room: "line", tags: "a,b" },
      },
    ];
    for (const record of expected) {
      const read = await expectStored(bucket, record.entry, record.ts, text(record.body));
      expect(read.headers.get("content-type")).toBe(record.type);
      expect(labelsOf(read)).toEqual(record.labels);
    }
  });

  it("slices the body by entry index first, then time", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: {
        "x-reduct-entries": "entry-0,entry-1",
        "x-reduct-start-ts": "1000",
        "x-reduct-0-10": "2,text/plain",
        "x-reduct-1-0": "3,text/plain",
      },
      body: "AABBB",
    });
    expect(response.status).toBe(200);
    await expectStored(bucket, "entry-0", 1010, text("AA"));
    await expectStored(bucket, "entry-1", 1000, text("BBB"));
  });

  it("echoes x-reduct-entries re-encoded (a raw '/' comes back as %2F)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await ioWrite(bucket, ["a/x/y/$meta", "plain"], 5, [
      { entry: 0, delta: 0, rest: "application/json,key=k", body: text("{}") },
      { entry: 1, delta: 1, rest: "", body: text("p") },
    ]);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-entries")).toBe("a%2Fx%2Fy%2F$meta,plain");
    expect(response.headers.get("x-reduct-start-ts")).toBe("5");
    await expectStored(bucket, "a/x/y/$meta", 5, text("{}"));
    await expectStored(bucket, "plain", 6, text("p"));
  });

  const mixed: V2Record[] = [
    { entry: 0, delta: 0, rest: "text/plain", body: bytesOf(10, 1) },
    { entry: 0, delta: 1, body: bytesOf(10, 2) },
    { entry: 0, delta: 2, body: bytesOf(10, 3) },
    { entry: 1, delta: 0, rest: "image/png,k=v", body: bytesOf(300 * KIB, 4) },
    { entry: 1, delta: 5, body: bytesOf(10, 5) },
    { entry: 2, delta: 3, rest: "", body: bytesOf(10, 6) },
  ];
  const chunkings: Array<[string, number[] | null]> = [
    ["one fixed-length body", null],
    ["1-byte chunks across the small records, then 64 KiB", [...Array<number>(25).fill(1), 64 * KIB]],
    ["7-byte chunks, then one chunk spanning the large record's end and the tail", [7, 7, 7, 7, 300 * KIB + 8]],
    ["4 KiB + 3 byte chunks", [4 * KIB + 3]],
  ];
  for (const [name, chunkSizes] of chunkings) {
    it(`writes small and large records of several entries byte for byte: ${name}`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const entries = ["small", "large/one", "tail"];
      const { headers, body } = v2Request(entries, 1000, mixed);
      const response =
        chunkSizes === null
          ? await api("POST", `/io/${bucket}/write`, { headers, body })
          : await api("POST", `/io/${bucket}/write`, {
              headers: { ...headers, "x-reduct-content-length": String(body.byteLength) },
              body: chunkedStream(body, chunkSizes),
            });
      expect(response.status).toBe(200);
      expect(recordErrors(response)).toEqual({});
      for (const r of mixed) await expectStored(bucket, entries[r.entry] ?? "", 1000 + r.delta, r.body);
      const large = await readRecord(bucket, "large/one", 1000);
      expect(large.response.headers.get("content-type")).toBe("image/png");
      expect(labelsOf(large.response)).toEqual({ k: "v" });
      const inherited = await readRecord(bucket, "large/one", 1005);
      expect(inherited.response.headers.get("content-type")).toBe("image/png");
      expect(labelsOf(inherited.response)).toEqual({ k: "v" });
    });
  }

  it("reports a duplicate as x-reduct-error-<idx>-<delta> and writes the others", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry-2", 1_000_000, "original");
    const response = await ioWrite(bucket, ["entry-1", "entry-2"], 1_000_000, [
      { entry: 0, delta: 0, rest: "text/plain,a=1", body: text("alpha") },
      { entry: 1, delta: 0, rest: "", body: text("dup") },
      { entry: 1, delta: 1, body: bytesOf(200 * KIB, 3) },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-1-0": "409,A record with timestamp 1000000 already exists" });
    await expectStored(bucket, "entry-1", 1_000_000, text("alpha"));
    await expectStored(bucket, "entry-2", 1_000_000, text("original"));
    await expectStored(bucket, "entry-2", 1_000_001, bytesOf(200 * KIB, 3));
  });

  it("reports HARD quota refusals per record, including a refused large record whose bytes are skipped", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "HARD", quota_size: 400_000 });
    const response = await ioWrite(bucket, ["a", "b"], 10, [
      { entry: 0, delta: 0, rest: "", body: bytesOf(300 * KIB, 1) },
      { entry: 0, delta: 1, body: bytesOf(300 * KIB, 2) },
      { entry: 1, delta: 0, rest: "", body: bytesOf(10, 3) },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-0-1": `400,Quota of '${bucket}' exceeded` });
    await expectStored(bucket, "a", 10, bytesOf(300 * KIB, 1));
    await expectAbsent(bucket, "a", 11);
    await expectStored(bucket, "b", 10, bytesOf(10, 3));
  });

  it("reports $meta attachments without a key per record", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await ioWrite(bucket, ["e/$meta"], 1, [
      { entry: 0, delta: 0, rest: "application/json,key=one", body: text("{}") },
      { entry: 0, delta: 1, rest: "application/json,key=", body: text("[]") },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-0-1": "422,System entry 'e/$meta' records must contain label 'key'",
    });
    await expectStored(bucket, "e/$meta", 1, text("{}"));
  });

  it("reports a missing bucket per record with an overall 200 (QUIRK)", async () => {
    const bucket = uniqueName("missing");
    const response = await ioWrite(bucket, ["a", "b"], 100, [
      { entry: 0, delta: 0, rest: "", body: text("x") },
      { entry: 1, delta: 7, rest: "", body: bytesOf(200 * KIB) },
    ]);
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-0-0": `404,Bucket '${bucket}' is not found`,
      "x-reduct-error-1-7": `404,Bucket '${bucket}' is not found`,
    });
    expect(response.headers.get("x-reduct-entries")).toBe("a,b");
  });

  it("a body that ends early → 400; complete records stay, the rest are absent and re-writable", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const records: V2Record[] = [
      { entry: 0, delta: 0, rest: "", body: bytesOf(10, 1) },
      { entry: 0, delta: 1, body: bytesOf(10, 2) },
      { entry: 1, delta: 0, rest: "", body: bytesOf(300 * KIB, 3) },
      { entry: 1, delta: 1, body: bytesOf(10, 4) },
    ];
    const { headers, body } = v2Request(["s", "l"], 50, records);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: { ...headers, "x-reduct-content-length": String(body.byteLength) },
      body: chunkedStream(body.subarray(0, 20 + 100 * KIB), [64 * KIB]),
    });
    await expectError(response, 400, SHORT_BODY);
    await expectStored(bucket, "s", 50, bytesOf(10, 1));
    await expectStored(bucket, "s", 51, bytesOf(10, 2));
    await expectAbsent(bucket, "l", 50);
    const retry = await ioWrite(bucket, ["l"], 50, [
      { entry: 0, delta: 0, rest: "", body: bytesOf(300 * KIB, 3) },
      { entry: 0, delta: 1, body: bytesOf(10, 4) },
    ]);
    expect(retry.status).toBe(200);
    expect(recordErrors(retry)).toEqual({});
    await expectStored(bucket, "l", 50, bytesOf(300 * KIB, 3));
    await expectStored(bucket, "l", 51, bytesOf(10, 4));
  });
});

describe("PATCH /io/:bucket/update", () => {
  it("applies ReductStore's documented example", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "x-0", 1000, "a", { labels: { a: "0", b: "1" } });
    await putRecord(bucket, "x-1", 1010, "b", { labels: { b: "1" } });
    const response = await api("PATCH", `/io/${bucket}/update`, {
      headers: {
        "x-reduct-entries": "x-0,x-1",
        "x-reduct-start-ts": "1000",
        "x-reduct-labels": "a,b",
        "x-reduct-0-0": "0,,0=one,1=,c=3",
        "x-reduct-1-10": "0,,a=two",
      },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-entries")).toBe("x-0,x-1");
    expect(response.headers.get("x-reduct-start-ts")).toBe("1000");
    expect(recordErrors(response)).toEqual({});
    expect(labelsOf(await expectStored(bucket, "x-0", 1000, text("a")))).toEqual({ a: "one", c: "3" });
    expect(labelsOf(await expectStored(bucket, "x-1", 1010, text("b")))).toEqual({ a: "two", b: "1" });
  });

  it("accumulates ops per entry and reports missing records and entries per record (404)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "a");
    await putRecord(bucket, "e", 3, "c", { labels: { keep: "yes", drop: "x" } });
    const response = await api("PATCH", `/io/${bucket}/update`, {
      headers: {
        "x-reduct-entries": "e,ghost",
        "x-reduct-start-ts": "1",
        "x-reduct-0-0": "0,,first=1",
        "x-reduct-0-1": "0",
        "x-reduct-0-2": "0,,drop=",
        "x-reduct-1-0": "0,,z=1",
      },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({
      "x-reduct-error-0-1": `404,Record 2 not found in entry ${bucket}/e`,
      "x-reduct-error-1-0": `404,Entry 'ghost' not found in bucket '${bucket}'`,
    });
    expect(labelsOf(await expectStored(bucket, "e", 1, text("a")))).toEqual({ first: "1" });
    expect(labelsOf(await expectStored(bucket, "e", 3, text("c")))).toEqual({ first: "1", keep: "yes" });
  });

  it("tombstones an attachment with remove=true", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e/$meta", 7, "{}", { labels: { key: "k" } });
    const response = await api("PATCH", `/io/${bucket}/update`, {
      headers: { "x-reduct-entries": "e%2F$meta", "x-reduct-start-ts": "7", "x-reduct-0-0": "0,,remove=true" },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({});
    expect(labelsOf(await expectStored(bucket, "e/$meta", 7, text("{}")))).toEqual({ key: "k", remove: "true" });
  });
});

describe("DELETE /io/:bucket/remove", () => {
  it("removes records of several entries and reports the missing one", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry-0", 1000, "a");
    await putRecord(bucket, "entry-1", 1000, "b");
    await putRecord(bucket, "entry-1", 1001, bytesOf(200 * KIB));
    await putRecord(bucket, "entry-1", 1003, "keep");
    const response = await api("DELETE", `/io/${bucket}/remove`, {
      headers: {
        "x-reduct-entries": "entry-0,entry-1",
        "x-reduct-start-ts": "1000",
        "x-reduct-0-0": "",
        "x-reduct-1-0": "",
        "x-reduct-1-1": "0,",
        "x-reduct-1-2": "",
      },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-entries")).toBe("entry-0,entry-1");
    expect(response.headers.get("x-reduct-start-ts")).toBe("1000");
    expect(recordErrors(response)).toEqual({ "x-reduct-error-1-2": `404,Record 1002 not found in entry ${bucket}/entry-1` });
    await expectAbsent(bucket, "entry-0", 1000);
    await expectAbsent(bucket, "entry-1", 1000);
    await expectAbsent(bucket, "entry-1", 1001);
    await expectStored(bucket, "entry-1", 1003, text("keep"));
  });

  it("reports a missing entry per record", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "a");
    const response = await api("DELETE", `/io/${bucket}/remove`, {
      headers: { "x-reduct-entries": "e,ghost", "x-reduct-start-ts": "1", "x-reduct-0-0": "", "x-reduct-1-0": "" },
    });
    expect(response.status).toBe(200);
    expect(recordErrors(response)).toEqual({ "x-reduct-error-1-0": `404,Entry 'ghost' not found in bucket '${bucket}'` });
    await expectAbsent(bucket, "e", 1);
  });
});

/** A request that must fail as a whole: exact status and message, and the bucket unchanged. */
interface ErrorCase {
  name: string;
  request: (bucket: string) => Promise<Response>;
  status: number;
  message: (bucket: string) => string;
}

const frame = { "x-reduct-entries": "e", "x-reduct-start-ts": "1" };
const write = (bucket: string, headers: Record<string, string>, body: BodyInit | null = "x") =>
  api("POST", `/io/${bucket}/write`, { headers, body });

const writeErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) =>
      api("POST", `/io/${b}/write`, { token: reader.value, headers: { ...frame, "x-reduct-0-0": "1," }, body: "x" }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "no x-reduct-entries",
    request: (b) => write(b, { "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-entries header is required",
  },
  {
    name: "empty entry in x-reduct-entries",
    request: (b) => write(b, { "x-reduct-entries": "e,,f", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-entries header must not contain empty entry names",
  },
  {
    name: "bad percent-encoding in x-reduct-entries",
    request: (b) => write(b, { "x-reduct-entries": "e%zz", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Invalid entry encoding in header name: 'e%zz'",
  },
  {
    name: "an entry named twice",
    request: (b) => write(b, { "x-reduct-entries": "e,e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-entries header must not contain an entry twice",
  },
  {
    name: "entry name that is not UTF-8",
    request: (b) => write(b, { "x-reduct-entries": "%FF", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Entry name is not valid UTF-8 in header '%FF'",
  },
  {
    name: "x-reduct-entries with a byte above ASCII",
    request: (b) => write(b, { "x-reduct-entries": "caf\u00e9", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Invalid entries header",
  },
  {
    name: "empty x-reduct-labels",
    request: (b) => write(b, { ...frame, "x-reduct-labels": "", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-labels header is empty",
  },
  {
    name: "empty name in x-reduct-labels",
    request: (b) => write(b, { ...frame, "x-reduct-labels": "a,,b", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-labels header must not contain empty label names",
  },
  {
    name: "bad percent-encoding in x-reduct-labels",
    request: (b) => write(b, { ...frame, "x-reduct-labels": "a,%zz", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Invalid label encoding in header value: '%zz'",
  },
  {
    name: "record header without an entry index",
    request: (b) => write(b, { ...frame, "x-reduct-5": "1," }),
    status: 422,
    message: () => "Invalid batched header 'x-reduct-5'",
  },
  {
    name: "two headers for the same record",
    request: (b) => write(b, { ...frame, "x-reduct-0-1": "1,", "x-reduct-00-1": "1," }, "xy"),
    status: 422,
    message: () => "Invalid header 'x-reduct-00-1': another header names the same record",
  },
  {
    name: "label value over the cap",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": `1,,a=${"v".repeat(4097)}` }),
    status: 422,
    message: () => "Label value of 'a' must be at most 4096 bytes",
  },
  {
    name: "too many labels (they accumulate per entry)",
    request: (b) =>
      write(
        b,
        {
          ...frame,
          "x-reduct-0-0": `1,,${Array.from({ length: 100 }, (_, i) => `a${i}=1`).join(",")}`,
          "x-reduct-0-1": `1,,${Array.from({ length: 29 }, (_, i) => `b${i}=1`).join(",")}`,
        },
        "xy",
      ),
    status: 422,
    message: () => "A record can have at most 128 labels",
  },
  {
    name: "no x-reduct-start-ts",
    request: (b) => write(b, { "x-reduct-entries": "e", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "x-reduct-start-ts header is required",
  },
  {
    name: "bad x-reduct-start-ts",
    request: (b) => write(b, { "x-reduct-entries": "e", "x-reduct-start-ts": "-1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Invalid x-reduct-start-ts header",
  },
  {
    name: "a v1 time header",
    request: (b) => write(b, { ...frame, "x-reduct-time-123": "1," }),
    status: 422,
    message: () => "Invalid header 'x-reduct-time-123': entry index must be a number",
  },
  {
    name: "entry index out of range",
    request: (b) => write(b, { ...frame, "x-reduct-5-0": "1," }),
    status: 422,
    message: () => "Invalid header 'x-reduct-5-0': entry index out of range",
  },
  {
    name: "bare LEN on an entry's first record",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "1" }),
    status: 422,
    message: () => "Content-type and labels must be provided for the first record of an entry",
  },
  {
    name: "bad size",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "x,text/plain" }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "label index out of range",
    request: (b) => write(b, { ...frame, "x-reduct-labels": "a,b", "x-reduct-0-0": "1,,3=x" }),
    status: 422,
    message: () => "Label index '3' is out of range",
  },
  {
    name: "malformed content type",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "1,text" }),
    status: 422,
    message: () => "Malformed content-type header: missing '/' between type and subtype in 'text'",
  },
  {
    name: "invalid entry name",
    request: (b) => write(b, { "x-reduct-entries": "ok,a.b", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'",
  },
  {
    name: "entry name with an empty segment",
    request: (b) => write(b, { "x-reduct-entries": "a%2F%2Fb", "x-reduct-start-ts": "1", "x-reduct-0-0": "1," }),
    status: 422,
    message: () => "Entry name must be non-empty and must not contain empty path segments",
  },
  {
    name: "no content length",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "1," }, chunkedStream(text("x"), [1])),
    status: 422,
    message: () => "content-length header is required",
  },
  {
    name: "x-reduct-content-length not a number",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "1,", "x-reduct-content-length": "1.0" }, chunkedStream(text("x"), [1])),
    status: 422,
    message: () => "x-reduct-content-length header must be a number",
  },
  {
    name: "Content-Length not the sum of the records",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "1,", "x-reduct-0-1": "1" }, "xyz"),
    status: 422,
    message: () => "content-length header does not match the sum of the content-lengths in the headers",
  },
  {
    name: "record over the size limit",
    request: (b) =>
      write(b, { ...frame, "x-reduct-0-0": "104857601,", "x-reduct-content-length": "104857601" }, chunkedStream(text("x"), [1])),
    status: 413,
    message: () => "Record of 104857601 bytes is larger than the limit of 104857600 bytes",
  },
  {
    name: "headers over the batch budget",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": `1,text/plain,a=${"v".repeat(520_000)}` }),
    status: 431,
    message: () => "Batched headers must be at most 512000 bytes in total",
  },
  {
    name: "body shorter than the records",
    request: (b) => write(b, { ...frame, "x-reduct-0-0": "5,", "x-reduct-content-length": "5" }, chunkedStream(text("xyz"), [3])),
    status: 400,
    message: () => SHORT_BODY,
  },
];

const updateErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) => api("PATCH", `/io/${b}/update`, { token: reader.value, headers: { ...frame, "x-reduct-0-0": "0,,a=b" } }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "missing bucket",
    request: () => api("PATCH", "/io/no-such-bucket-v2/update", { headers: { ...frame, "x-reduct-0-0": "0,,a=b" } }),
    status: 404,
    message: () => "Bucket 'no-such-bucket-v2' is not found",
  },
  {
    name: "bare LEN on an entry's first record",
    request: (b) => api("PATCH", `/io/${b}/update`, { headers: { ...frame, "x-reduct-0-0": "0" } }),
    status: 422,
    message: () => "Content-type and labels must be provided for the first record of an entry",
  },
  {
    name: "label op without '='",
    request: (b) => api("PATCH", `/io/${b}/update`, { headers: { ...frame, "x-reduct-0-0": "0,,a" } }),
    status: 422,
    message: () => "Invalid batched header",
  },
  {
    name: "reserved label name",
    request: (b) => api("PATCH", `/io/${b}/update`, { headers: { ...frame, "x-reduct-0-0": "0,,@a=1" } }),
    status: 422,
    message: () => "Label names must not start with '@': reserved for computed labels",
  },
];

const removeErrors: ErrorCase[] = [
  {
    name: "token without write access",
    request: (b) => api("DELETE", `/io/${b}/remove`, { token: reader.value, headers: { ...frame, "x-reduct-0-1": "" } }),
    status: 403,
    message: noWriteAccess,
  },
  {
    name: "missing bucket",
    request: () => api("DELETE", "/io/no-such-bucket-v2/remove", { headers: { ...frame, "x-reduct-0-1": "" } }),
    status: 404,
    message: () => "Bucket 'no-such-bucket-v2' is not found",
  },
  {
    name: "a $meta entry",
    request: (b) =>
      api("DELETE", `/io/${b}/remove`, {
        headers: { "x-reduct-entries": "e,e%2F$meta", "x-reduct-start-ts": "1", "x-reduct-0-0": "", "x-reduct-1-0": "" },
      }),
    status: 422,
    message: () => "Can't delete records from system entry 'e/$meta'; use label update with remove=true",
  },
  {
    name: "no x-reduct-start-ts",
    request: (b) => api("DELETE", `/io/${b}/remove`, { headers: { "x-reduct-entries": "e", "x-reduct-0-0": "" } }),
    status: 422,
    message: () => "x-reduct-start-ts header is required",
  },
  {
    name: "entry index out of range",
    request: (b) => api("DELETE", `/io/${b}/remove`, { headers: { ...frame, "x-reduct-0-0": "", "x-reduct-1-0": "" } }),
    status: 422,
    message: () => "Invalid header 'x-reduct-1-0': entry index out of range",
  },
];

describe("v2 batch requests refused as a whole change nothing", () => {
  const tables: Array<[string, ErrorCase[]]> = [
    ["write", writeErrors],
    ["update", updateErrors],
    ["remove", removeErrors],
  ];
  for (const [operation, cases] of tables) {
    for (const testCase of cases) {
      it(`${operation}: ${testCase.name} → ${testCase.status}`, async () => {
        const bucket = uniqueName();
        await createBucket(bucket);
        await putRecord(bucket, "e", 1, "one", { labels: { a: "1" } });
        await putRecord(bucket, "e/$meta", 1, "{}", { labels: { key: "k" } });
        const before = await snapshot(bucket);
        await expectError(await testCase.request(bucket), testCase.status, testCase.message(bucket));
        expect(await snapshot(bucket)).toEqual(before);
        const still = await expectStored(bucket, "e", 1, text("one"));
        expect(labelsOf(still)).toEqual({ a: "1" });
      });
    }
  }
});
