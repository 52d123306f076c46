/**
 * Compressed batch bodies for a replication whose target reads them (API ≥ 1.21): streamed, so
 * a large record is never held whole. gzip uses the runtime's CompressionStream; zstd, which the
 * runtime lacks, `node:zlib`, fed only as fast as it drains.
 */
import { type Compressor, constants, createZstdCompress, type Decompressor } from "node:zlib";
import type { ReplicationCompression } from "../../model/replications";

/** The first API version whose batch endpoints accept `Content-Encoding: gzip | zstd`. */
export const COMPRESSED_BATCH_API = [1, 21] as const;

/** Whether a target reporting `x-reduct-api: <api>` takes compressed batches. */
export function acceptsCompression(api: string | null): boolean {
  const match = /^(\d+)\.(\d+)/.exec(api?.trim() ?? "");
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > COMPRESSED_BATCH_API[0] || (major === COMPRESSED_BATCH_API[0] && minor >= COMPRESSED_BATCH_API[1]);
}

function sourceOf(body: Uint8Array | ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  if (!(body instanceof Uint8Array)) return body;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(body);
      controller.close();
    },
  });
}

/** `body` compressed with `coding` (not "none"), as a stream of unknown length. */
export function compressBody(
  body: Uint8Array | ReadableStream<Uint8Array>,
  coding: Exclude<ReplicationCompression, "none">,
): ReadableStream<Uint8Array> {
  const source = sourceOf(body);
  if (coding === "gzip") return source.pipeThrough(new CompressionStream("gzip"));
  const compressor = createZstdCompress({ chunkSize: ZSTD_OUTPUT_CHUNK });
  const reader = source.getReader();
  void feed(reader, compressor);
  const output = compressor[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const result = await output.next();
        if (result.done) {
          controller.close();
          return;
        }
        const { buffer, byteOffset, byteLength } = result.value;
        controller.enqueue(new Uint8Array(buffer, byteOffset, byteLength));
      },
      async cancel() {
        compressor.destroy();
        await reader.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * workerd's zstd encoder fails ("Unexpected end of file") when one call's output overflows what
 * is left of its output chunk (measured: 300 KiB of random bytes with the default chunk; and with
 * this chunk, compressible bytes then random ones, where zstd emitted a whole 128 KiB block at
 * once). Each slice is flushed, so no call outputs more than about a slice.
 */
const ZSTD_INPUT_SLICE = 16 * 1024;
const ZSTD_OUTPUT_CHUNK = 256 * 1024;

async function feed(source: ReadableStreamDefaultReader<Uint8Array>, compressor: Compressor): Promise<void> {
  try {
    for (;;) {
      const { done, value } = await source.read();
      if (done || compressor.destroyed) break;
      for (let at = 0; at < value.byteLength; at += ZSTD_INPUT_SLICE) {
        if (!compressor.write(value.subarray(at, at + ZSTD_INPUT_SLICE))) await drained(compressor);
        if (compressor.destroyed) break;
        await flushed(compressor);
      }
    }
    if (!compressor.destroyed) compressor.end();
  } catch (error) {
    // The record bytes could not be read: the request fails and its rows stay in the log.
    compressor.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Resolves once what the compressor holds is output, or it is gone. */
function flushed(compressor: Compressor): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      compressor.off("close", done);
      resolve();
    };
    compressor.once("close", done);
    compressor.flush(constants.ZSTD_e_flush, done);
  });
}

function drained(compressor: Decompressor): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      compressor.off("drain", done);
      compressor.off("close", done);
      resolve();
    };
    compressor.once("drain", done);
    compressor.once("close", done);
  });
}
