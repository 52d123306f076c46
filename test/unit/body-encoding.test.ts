/**
 * Decoding of compressed batch bodies: which `Content-Encoding` values are taken, that decoding
 * pulls the request body only as its output is read (bounded memory for highly compressed bodies),
 * and that a large record of a decoded body reaches R2 as a stream of pieces, never one buffer.
 */
import { describe, expect, it } from "vitest";
import { decodedBody, readContentCoding } from "../../src/api/body-encoding";
import { type WriteTarget, writeBatchBody } from "../../src/api/record-write";
import { HttpError } from "../../src/errors";
import { CODINGS, compress, compressIncompressible } from "../helpers/encoding";
import { bytesOf, sha256 } from "../helpers/records";

const KIB = 1024;
const MIB = 1024 * KIB;

describe("readContentCoding", () => {
  const cases: Array<[string | null, string | null | { status: number; message: string }]> = [
    [null, null],
    ["identity", null],
    [" Identity ", null],
    ["gzip", "gzip"],
    ["GZip", "gzip"],
    ["zstd", "zstd"],
    [" ZSTD", "zstd"],
    ["br", { status: 415, message: "Unsupported content encoding 'br'" }],
    ["deflate", { status: 415, message: "Unsupported content encoding 'deflate'" }],
    ["gzip, zstd", { status: 415, message: "Unsupported content encoding 'gzip, zstd'" }],
    ["", { status: 415, message: "Unsupported content encoding ''" }],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => {
      const headers = new Headers(value === null ? {} : { "content-encoding": value });
      if (expected === null || typeof expected === "string") {
        expect(readContentCoding(headers)).toBe(expected);
        return;
      }
      let thrown: unknown;
      try {
        readContentCoding(headers);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(HttpError);
      const error = thrown as HttpError;
      expect({ status: error.status, message: error.message, headers: error.headers }).toEqual({
        ...expected,
        headers: { "accept-encoding": "gzip,zstd" },
      });
    });
  }
});

/** `bytes` as a stream of `size`-byte pieces that counts how much of it was pulled. */
function counted(bytes: Uint8Array, size: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= bytes.byteLength) {
          controller.close();
          return;
        }
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => Math.min(offset, bytes.byteLength) };
}

describe("decodedBody", () => {
  for (const coding of CODINGS) {
    it(`${coding}: the request body is pulled only as decoded bytes are read`, async () => {
      const packed = compressIncompressible(coding, bytesOf(2 * MIB, 7));
      const body = counted(packed, 16 * KIB);
      const reader = decodedBody(body.stream, coding).getReader();
      await reader.read();
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Nobody reads: the decompressor's input and output buffers (64 KiB each) hold the rest back.
      expect(body.pulled()).toBeLessThanOrEqual(256 * KIB);
      await reader.cancel();
    });

    it(`${coding}: 16 MiB of zeros come out 64 KiB at most at a time, as plain Uint8Arrays`, async () => {
      const packed = compress(coding, new Uint8Array(16 * MIB));
      const reader = decodedBody(counted(packed, 64).stream, coding).getReader();
      let total = 0;
      let largest = 0;
      const kinds = new Set<string>();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        largest = Math.max(largest, value.byteLength);
        kinds.add(value.constructor.name);
      }
      expect({ total, largest, kinds: [...kinds] }).toEqual({ total: 16 * MIB, largest: 64 * KIB, kinds: ["Uint8Array"] });
    });
  }

  it("a large record of a decoded body streams to R2 in pieces", async () => {
    const record = bytesOf(600 * KIB, 3);
    const pieces: number[] = [];
    let stored = new Uint8Array(0);
    const stub = {
      async reserveUpload() {
        return { ok: true, objectKey: "k", leaseMs: 60_000 };
      },
      async commitUpload() {
        return { ok: true };
      },
      async abortUpload() {
        throw new Error("not expected");
      },
    };
    const r2 = {
      async put(_key: string, stream: ReadableStream<Uint8Array>) {
        const parts: Uint8Array[] = [];
        for await (const piece of stream) {
          pieces.push(piece.byteLength);
          parts.push(piece);
        }
        stored = new Uint8Array(await new Blob(parts).arrayBuffer());
        return {};
      },
    };
    const target = {
      bucket: "b",
      stub: stub as unknown as WriteTarget["stub"],
      records: r2 as unknown as R2Bucket,
      ioTimeoutMs: 30_000,
    };
    const meta = { entry: "e", ts: 1, size: record.byteLength, contentType: "application/octet-stream", labels: {} };
    const body = decodedBody(counted(compress("gzip", record), 16 * KIB).stream, "gzip");
    expect(await writeBatchBody(target, body, [{ meta }], { wholeBody: true })).toEqual([]);
    expect(await sha256(stored)).toBe(await sha256(record));
    expect(pieces.length).toBeGreaterThan(5);
    expect(Math.max(...pieces)).toBeLessThanOrEqual(64 * KIB);
  });
});
