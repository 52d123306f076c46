/**
 * Write bodies sent with `Content-Encoding: gzip` or `zstd`. A ReductStore sender (≥ 1.21) that
 * replicates with compression to a target reporting API ≥ 1.21 streams each batch so, chunked and
 * without Content-Length: the payload length is the sum of the per-record lengths. The body is
 * decoded as it arrives, with bounded memory, and read by the same write path as a plain body.
 *
 * Both codings use workerd's `node:zlib` decompressors: the runtime's DecompressionStream has no
 * zstd, and for gzip it turns one input chunk into all of its output at once (measured: a 50 KB
 * chunk of a 50 MiB run of zeros was queued whole), where a `node:zlib` stream stops inflating when
 * 64 KiB of output wait unread.
 */
import { createGunzip, createZstdDecompress, type Decompressor } from "node:zlib";
import { unprocessable, unsupportedMediaType } from "../errors";
import { BodyDecodeError, BodyLengthError, shorterBody } from "../storage/record-put";
import { REDUCT_CONTENT_LENGTH_HEADER, readContentLength, readOptionalContentLength } from "./headers";

export type ContentCoding = "gzip" | "zstd";

/** The codings a write body may come in, as a 415 lists them in `Accept-Encoding`. */
export const ACCEPTED_CODINGS = "gzip,zstd";

const DECOMPRESSORS: Record<ContentCoding, () => Decompressor> = {
  gzip: createGunzip,
  zstd: createZstdDecompress,
};

/**
 * The body's `Content-Encoding`: null for none or `identity`. Codings are case-insensitive; any
 * other value (a stack of codings included) → 415 with the accepted codings, as the reference's
 * decompression layer answers, before anything is read or stored.
 */
export function readContentCoding(headers: Headers): ContentCoding | null {
  const value = headers.get("content-encoding");
  if (value === null) return null;
  const coding = value.trim().toLowerCase();
  if (coding === "identity") return null;
  if (coding === "gzip" || coding === "zstd") return coding;
  throw unsupportedMediaType(`Unsupported content encoding '${value}'`, { "accept-encoding": ACCEPTED_CODINGS });
}

/**
 * The payload length a batch declares, or null. A plain body declares it with `Content-Length`
 * (else `x-reduct-content-length`); `required` as the v2 protocol has it. An encoded body's
 * Content-Length counts compressed bytes and says nothing about the payload: only
 * `x-reduct-content-length` may declare it, and without it the records' lengths are the length.
 */
export function declaredBatchLength(headers: Headers, coding: ContentCoding | null, required: boolean): number | null {
  if (coding !== null) return readOptionalContentLength(headers, [REDUCT_CONTENT_LENGTH_HEADER]);
  return required ? readContentLength(headers) : readOptionalContentLength(headers);
}

/**
 * A single record's length: its Content-Length for a plain body; for an encoded one only
 * `x-reduct-content-length` can say it, and must.
 */
export function declaredRecordLength(headers: Headers, coding: ContentCoding | null): number {
  if (coding === null) return readContentLength(headers);
  const declared = readOptionalContentLength(headers, [REDUCT_CONTENT_LENGTH_HEADER]);
  if (declared === null) throw unprocessable(`${REDUCT_CONTENT_LENGTH_HEADER} header is required with Content-Encoding`);
  return declared;
}

/** The request body as the write path reads it: decoded when it is encoded. */
export function writeBody(
  body: ReadableStream<Uint8Array> | null,
  coding: ContentCoding | null,
): ReadableStream<Uint8Array> | null {
  return coding === null ? body : decodedBody(body, coding);
}

/**
 * `body` decoded. Its reads fail with BodyDecodeError when the bytes are corrupt, truncated or fail
 * their checksum, and with BodyLengthError when the client goes away mid-body. Input is fed only as
 * the decompressor drains, and output is produced only as it is read, so a highly compressed body
 * never piles up decoded bytes. Cancelling it cancels the request body.
 */
export function decodedBody(body: ReadableStream<Uint8Array> | null, coding: ContentCoding): ReadableStream<Uint8Array> {
  const decompressor = DECOMPRESSORS[coding]();
  const source = body?.getReader() ?? null;
  void feed(source, decompressor);
  const output = decompressor[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: IteratorResult<Uint8Array>;
        try {
          result = await output.next();
        } catch (error) {
          throw error instanceof BodyLengthError
            ? error
            : new BodyDecodeError(`Error while receiving data chunk: corrupt or truncated ${coding} data`);
        }
        if (result.done) {
          controller.close();
          return;
        }
        // A plain view: the reader's slice() of it must copy, which a Buffer's does not.
        const { buffer, byteOffset, byteLength } = result.value;
        controller.enqueue(new Uint8Array(buffer, byteOffset, byteLength));
      },
      async cancel() {
        decompressor.destroy();
        await source?.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/** Writes the request body into the decompressor as fast as it drains; never rejects. */
async function feed(source: ReadableStreamDefaultReader<Uint8Array> | null, decompressor: Decompressor): Promise<void> {
  try {
    while (source !== null) {
      const { done, value } = await source.read();
      if (done || decompressor.destroyed) break;
      if (!decompressor.write(value)) await drained(decompressor);
    }
    if (!decompressor.destroyed) decompressor.end();
  } catch {
    // The client went away mid-body: what was decoded so far is all there is.
    decompressor.destroy(shorterBody());
  }
}

/** Resolves when the decompressor wants more input, or is gone. */
function drained(decompressor: Decompressor): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      decompressor.off("drain", done);
      decompressor.off("close", done);
      resolve();
    };
    decompressor.once("drain", done);
    decompressor.once("close", done);
  });
}
