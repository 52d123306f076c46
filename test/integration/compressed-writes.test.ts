/**
 * Batch writes with a compressed body (`Content-Encoding: gzip | zstd`), as a ReductStore 1.21
 * sender replicating with compression sends them: chunked, no Content-Length, the payload length
 * the sum of the record lengths. Every outcome is pinned in a table with what the bucket holds
 * afterwards; a failure stores no more than the same failure of a plain body would.
 */
import { constants, zstdCompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CODINGS, type Coding, compress, compressIncompressible, concat } from "../helpers/encoding";
import { api, expectError, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, sha256 } from "../helpers/records";

const SHORT_BODY = "Content is shorter than expected: no more data to read";
const LONG_BODY = "Content is bigger than expected in content-length header";
const LENGTH_MISMATCH = "content-length header does not match the sum of the content-lengths in the headers";
const corrupt = (coding: string) => `Error while receiving data chunk: corrupt or truncated ${coding} data`;
const KIB = 1024;

interface Rec {
  ts: number;
  rest: string;
  body: Uint8Array;
}

const text = (value: string) => new TextEncoder().encode(value);

/** Compressible records with labels, as a sender's batch of sensor readings. */
const SMALL: Rec[] = [1, 2, 3].map((ts) => ({
  ts,
  rest: `text/plain,seq=${ts},site="a,b"`,
  body: text(`reading ${ts}: ${"temperature=21.5;humidity=40;".repeat(ts * 3)}`),
}));

const timeHeaders = (records: readonly Rec[]) =>
  Object.fromEntries(records.map((r) => [`x-reduct-time-${r.ts}`, `${r.body.byteLength},${r.rest}`]));

/** A body handed over in `size`-byte chunks, with no length known up front (sent chunked). */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

/** A body that sends `bytes` and then breaks, as a connection cut mid-body. */
function cutAfter(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (sent) {
        controller.error(new Error("connection reset"));
        return;
      }
      sent = true;
      controller.enqueue(bytes);
    },
  });
}

/** POSTs a v1 batch the way a 1.21 sender does with compression: a stream, no Content-Length. */
function postEncoded(
  bucket: string,
  records: readonly Rec[],
  body: Uint8Array | ReadableStream<Uint8Array>,
  encoding: string,
  extra = {},
) {
  return api("POST", `/b/${bucket}/e/batch`, {
    headers: {
      "content-type": "application/octet-stream",
      "content-encoding": encoding,
      ...timeHeaders(records),
      ...extra,
    },
    body: body instanceof Uint8Array ? chunked(body, 16 * KIB) : body,
  });
}

/** Which of `records` read back (byte for byte, with type and labels) and which are absent. */
async function storedOf(bucket: string, records: readonly Rec[]): Promise<number[]> {
  const stored: number[] = [];
  for (const record of records) {
    const response = await api("GET", `/b/${bucket}/e?ts=${record.ts}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status === 404) continue;
    expect(response.status).toBe(200);
    expect(await sha256(bytes)).toBe(await sha256(record.body));
    expect(response.headers.get("content-type")).toBe(record.rest.split(",")[0] || "application/octet-stream");
    stored.push(record.ts);
  }
  return stored;
}

const flipByte = (bytes: Uint8Array, at: number) => {
  const copy = new Uint8Array(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0x55;
  return copy;
};

interface Case {
  name: string;
  records?: Rec[];
  /** The encoded body sent for `records` (all SMALL unless given). */
  body: (coding: Coding, plain: Uint8Array) => Uint8Array | ReadableStream<Uint8Array>;
  encoding?: (coding: Coding) => string;
  headers?: Record<string, string>;
  status: number;
  message?: (coding: Coding) => string;
  stored: number[];
}

const CASES: Case[] = [
  { name: "a good body", body: (c, p) => compress(c, p), status: 200, stored: [1, 2, 3] },
  { name: "a good body in 7-byte chunks", body: (c, p) => chunked(compress(c, p), 7), status: 200, stored: [1, 2, 3] },
  {
    name: "a good body with a Content-Length of its compressed bytes (ignored)",
    body: (c, p) => compress(c, p),
    headers: { "content-length": "5" },
    status: 200,
    stored: [1, 2, 3],
  },
  {
    name: "the coding in upper case with spaces",
    body: (c, p) => compress(c, p),
    encoding: (c) => ` ${c.toUpperCase()} `,
    status: 200,
    stored: [1, 2, 3],
  },
  {
    name: "x-reduct-content-length equal to the records' sum",
    body: (c, p) => compress(c, p),
    headers: { "x-reduct-content-length": String(SMALL.reduce((s, r) => s + r.body.byteLength, 0)) },
    status: 200,
    stored: [1, 2, 3],
  },
  {
    name: "x-reduct-content-length not the records' sum",
    body: (c, p) => compress(c, p),
    headers: { "x-reduct-content-length": "1" },
    status: 422,
    message: () => LENGTH_MISMATCH,
    stored: [],
  },
  {
    name: "bytes that are not compressed data",
    body: () => bytesOf(300, 9),
    status: 400,
    message: corrupt,
    stored: [],
  },
  {
    // zstd detects damage to a block's contents only with the frame checksum (optional; gzip's
    // CRC-32 is always there), so the zstd body here carries one.
    name: "compressed data damaged in the middle",
    body: (c, p) => {
      const packed = c === "gzip" ? compress(c, p) : zstdCompressSync(p, { params: { [constants.ZSTD_c_checksumFlag]: 1 } });
      return flipByte(packed, Math.floor(packed.byteLength / 2));
    },
    status: 400,
    message: corrupt,
    stored: [],
  },
  {
    name: "compressed data cut short",
    body: (c, p) => {
      const packed = compress(c, p);
      return packed.subarray(0, packed.byteLength - 6);
    },
    status: 400,
    message: corrupt,
    stored: [],
  },
  {
    // Records decoded in full before the decoder fails are not written either: their bytes were
    // never checked against the stream's checksum.
    name: "compressed data cut in the middle",
    records: [1, 2, 3].map((ts) => ({ ts, rest: "application/octet-stream", body: bytesOf(40 * KIB, ts) })),
    body: (c, p) => {
      const packed = compressIncompressible(c, p);
      return packed.subarray(0, Math.floor(packed.byteLength * 0.6));
    },
    status: 400,
    message: corrupt,
    stored: [],
  },
  {
    name: "decoded bytes longer than the records",
    body: (c, p) => compress(c, concat([p, text("extra")])),
    status: 400,
    message: () => LONG_BODY,
    stored: [],
  },
  {
    // As for a plain body cut there: the records received in full stay.
    name: "decoded bytes shorter than the records",
    body: (c, p) => compress(c, p.subarray(0, p.byteLength - 5)),
    status: 400,
    message: () => SHORT_BODY,
    stored: [1, 2],
  },
  {
    name: "an empty body",
    body: () => new Uint8Array(0),
    status: 400,
    message: (c) => (c === "gzip" ? corrupt(c) : SHORT_BODY),
    stored: [],
  },
  {
    name: "a connection cut inside the second record",
    body: (c, p) => {
      // A flushed prefix: the decoder can hand out what it has before the cut.
      const packed = compress(c, p);
      return cutAfter(packed.subarray(0, Math.floor(packed.byteLength / 2)));
    },
    status: 400,
    message: () => SHORT_BODY,
    stored: [],
  },
  {
    name: "an unknown coding",
    body: (c, p) => compress(c, p),
    encoding: () => "br",
    status: 415,
    message: () => "Unsupported content encoding 'br'",
    stored: [],
  },
  {
    name: "a stack of codings",
    body: (c, p) => compress(c, p),
    encoding: (c) => `${c}, identity`,
    status: 415,
    message: (c) => `Unsupported content encoding '${c}, identity'`,
    stored: [],
  },
];

describe("POST /b/:bucket/:entry/batch with Content-Encoding", () => {
  for (const coding of CODINGS) {
    for (const testCase of CASES) {
      it(`${coding}: ${testCase.name} → ${testCase.status}, stores ${JSON.stringify(testCase.stored)}`, async () => {
        const bucket = uniqueName();
        await createBucket(bucket);
        const records = testCase.records ?? SMALL;
        const plain = concat(records.map((r) => r.body));
        const encoding = testCase.encoding?.(coding) ?? coding;
        const response = await postEncoded(bucket, records, testCase.body(coding, plain), encoding, testCase.headers);
        if (testCase.status === 200) {
          expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
            status: 200,
            error: null,
          });
          await response.arrayBuffer();
        } else {
          await expectError(response, testCase.status, testCase.message?.(coding) ?? "");
        }
        if (testCase.status === 415) expect(response.headers.get("accept-encoding")).toBe("gzip,zstd");
        expect(await storedOf(bucket, records)).toEqual(testCase.stored);
        if (testCase.status === 200) {
          const read = await api("GET", `/b/${bucket}/e?ts=2`);
          await read.arrayBuffer();
          expect([read.headers.get("x-reduct-label-seq"), read.headers.get("x-reduct-label-site")]).toEqual(["2", "a,b"]);
        }
      });
    }
  }

  it("a plain body cut like the 'shorter' case stores the same records", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const plain = concat(SMALL.map((r) => r.body));
    const response = await api("POST", `/b/${bucket}/e/batch`, {
      headers: timeHeaders(SMALL),
      body: chunked(plain.subarray(0, plain.byteLength - 5), 16 * KIB),
    });
    await expectError(response, 400, SHORT_BODY);
    expect(await storedOf(bucket, SMALL)).toEqual([1, 2]);
  });

  it("identity is no coding: the body is taken as it is", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await postEncoded(bucket, SMALL, concat(SMALL.map((r) => r.body)), "Identity");
    expect(response.status).toBe(200);
    expect(await storedOf(bucket, SMALL)).toEqual([1, 2, 3]);
  });

  // A record over the large-record threshold (128 KiB) inside a compressed batch streams to R2 on
  // its own; one that fails to decode is aborted and the records before it (written before it
  // began) stay.
  const big: Rec[] = [
    { ts: 10, rest: "text/plain", body: text("before") },
    { ts: 11, rest: "image/jpeg,kind=big", body: bytesOf(700 * KIB, 11) },
    { ts: 12, rest: "text/plain", body: text("after") },
  ];
  for (const coding of CODINGS) {
    it(`${coding}: a 700 KiB record between small ones is written byte for byte`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const packed = compressIncompressible(coding, concat(big.map((r) => r.body)));
      const response = await postEncoded(bucket, big, chunked(packed, 64 * KIB + 3), coding);
      expect(response.status).toBe(200);
      expect(await storedOf(bucket, big)).toEqual([10, 11, 12]);
    });

    it(`${coding}: compressed data cut inside a 700 KiB record → 400; only the record before it stays`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const packed = compressIncompressible(coding, concat(big.map((r) => r.body)));
      const response = await postEncoded(bucket, big, packed.subarray(0, 300 * KIB), coding);
      await expectError(response, 400, corrupt(coding));
      expect(await storedOf(bucket, big)).toEqual([10]);
      // The sender's retry of the whole batch: 409 for the record already there, the rest written.
      const retry = await postEncoded(bucket, big, packed, coding);
      expect(retry.status).toBe(200);
      expect(retry.headers.get("x-reduct-error-10")).toBe("409,A record with timestamp 10 already exists");
      expect([...retry.headers].filter(([name]) => name.startsWith("x-reduct-error-"))).toHaveLength(1);
      expect(await storedOf(bucket, big)).toEqual([10, 11, 12]);
    });
  }
});

describe("POST /io/:bucket/write with Content-Encoding", () => {
  for (const coding of CODINGS) {
    it(`${coding}: a v2 batch of two entries is decoded, no Content-Length needed`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const bodies = [text("first of a"), text("second of a"), text("only of b")];
      const response = await api("POST", `/io/${bucket}/write`, {
        headers: {
          "content-encoding": coding,
          "x-reduct-entries": "a,b",
          "x-reduct-start-ts": "100",
          "x-reduct-0-0": `${bodies[0]?.byteLength},text/plain`,
          "x-reduct-0-1": `${bodies[1]?.byteLength}`,
          "x-reduct-1-5": `${bodies[2]?.byteLength},text/plain`,
        },
        body: chunked(compress(coding, concat(bodies)), 5),
      });
      expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ status: 200, error: null });
      for (const [path, body] of [
        ["a?ts=100", bodies[0]],
        ["a?ts=101", bodies[1]],
        ["b?ts=105", bodies[2]],
      ] as const) {
        const read = await api("GET", `/b/${bucket}/${path}`);
        expect(new Uint8Array(await read.arrayBuffer())).toEqual(body);
      }
    });

    it(`${coding}: a v2 batch whose decoded bytes are longer → 400, nothing stored`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const response = await api("POST", `/io/${bucket}/write`, {
        headers: {
          "content-encoding": coding,
          "x-reduct-entries": "a",
          "x-reduct-start-ts": "1",
          "x-reduct-0-0": "3,text/plain",
        },
        body: chunked(compress(coding, text("abcdef")), 64),
      });
      await expectError(response, 400, LONG_BODY);
      const read = await api("GET", `/b/${bucket}/a?ts=1`);
      await read.arrayBuffer();
      expect(read.status).toBe(404);
    });
  }

  it("an unknown coding → 415 before anything is read", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: { "content-encoding": "deflate", "x-reduct-entries": "a", "x-reduct-start-ts": "1", "x-reduct-0-0": "3" },
      body: "abc",
    });
    await expectError(response, 415, "Unsupported content encoding 'deflate'");
  });
});

describe("POST /b/:bucket/:entry?ts= with Content-Encoding", () => {
  const small = text(`one reading: ${"pressure=1013;".repeat(40)}`);
  const large = bytesOf(300 * KIB, 21);
  interface SingleCase {
    name: string;
    record: Uint8Array;
    body: (coding: Coding) => Uint8Array;
    length: number | null;
    status: number;
    message?: (coding: Coding) => string;
  }
  const cases: SingleCase[] = [
    { name: "a small record", record: small, body: (c) => compress(c, small), length: small.byteLength, status: 200 },
    {
      name: "a 300 KiB record (streamed to R2)",
      record: large,
      body: (c) => compressIncompressible(c, large),
      length: large.byteLength,
      status: 200,
    },
    {
      name: "no x-reduct-content-length",
      record: small,
      body: (c) => compress(c, small),
      length: null,
      status: 422,
      message: () => "x-reduct-content-length header is required with Content-Encoding",
    },
    {
      name: "decoded bytes longer than declared",
      record: small,
      body: (c) => compress(c, small),
      length: small.byteLength - 1,
      status: 400,
      message: () => LONG_BODY,
    },
    {
      name: "a large record whose decoded bytes are shorter than declared",
      record: large,
      body: (c) => compressIncompressible(c, large),
      length: large.byteLength + 1,
      status: 400,
      message: () => SHORT_BODY,
    },
    {
      name: "a large record cut inside its compressed data",
      record: large,
      body: (c) => compressIncompressible(c, large).subarray(0, 100 * KIB),
      length: large.byteLength,
      status: 400,
      message: corrupt,
    },
    {
      name: "bytes that are not compressed data",
      record: small,
      body: () => bytesOf(200, 4),
      length: small.byteLength,
      status: 400,
      message: corrupt,
    },
  ];
  for (const coding of CODINGS) {
    for (const testCase of cases) {
      it(`${coding}: ${testCase.name} → ${testCase.status}`, async () => {
        const bucket = uniqueName();
        await createBucket(bucket);
        const headers: Record<string, string> = { "content-encoding": coding, "content-type": "text/plain" };
        if (testCase.length !== null) headers["x-reduct-content-length"] = String(testCase.length);
        const response = await api("POST", `/b/${bucket}/e?ts=5`, {
          headers,
          body: chunked(testCase.body(coding), 16 * KIB),
        });
        const read = await api("GET", `/b/${bucket}/e?ts=5`);
        const bytes = new Uint8Array(await read.arrayBuffer());
        if (testCase.status === 200) {
          expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
            status: 200,
            error: null,
          });
          expect(read.status).toBe(200);
          expect(await sha256(bytes)).toBe(await sha256(testCase.record));
        } else {
          await expectError(response, testCase.status, testCase.message?.(coding) ?? "");
          expect(read.status).toBe(404);
        }
      });
    }
  }
});
