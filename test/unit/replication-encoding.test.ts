/** Compressed replication bodies decode, by our own write path's decoder, to exactly the bytes sent. */
import { describe, expect, it } from "vitest";
import { decodedBody } from "../../src/api/body-encoding";
import { acceptsCompression, compressBody } from "../../src/bucket/duties/replication-encoding";
import { bytesOf } from "../helpers/records";

/** Plain comparison: deep equality of megabytes is slow in vitest. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function all(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe("compressBody", () => {
  // Random bytes do not compress: with workerd's default zstd output chunk, 300 KiB of them failed.
  it.each([
    ["gzip", 9],
    ["gzip", 2 * 1024 * 1024],
    ["zstd", 9],
    ["zstd", 300 * 1024],
    ["zstd", 2 * 1024 * 1024],
  ] as const)("%s, %i random bytes, one buffer and as a stream of two chunks", async (coding, size) => {
    const data = bytesOf(size, 7);
    expect(same(await all(decodedBody(new Response(await all(compressBody(data, coding))).body, coding)), data)).toBe(true);
    const half = Math.floor(size / 2);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(data.slice(0, half));
        controller.enqueue(data.slice(half));
        controller.close();
      },
    });
    expect(same(await all(decodedBody(new Response(await all(compressBody(stream, coding))).body, coding)), data)).toBe(true);
  });
});

describe("acceptsCompression", () => {
  it.each([
    ["1.21", true],
    ["1.22", true],
    ["2.0", true],
    ["1.20", false],
    ["1.9", false],
    ["", false],
    [null, false],
  ] as const)("x-reduct-api %j → %s", (api, want) => {
    expect(acceptsCompression(api)).toBe(want);
  });
});
