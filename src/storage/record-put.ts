/**
 * Streamed puts of large records: request bytes piped straight into one R2 object through a
 * FixedLengthStream, never buffered, with exactly the announced length. A short, long or broken
 * body is the client's fault (BodyLengthError, answered 400) and so is one that sends nothing for
 * the I/O timeout (`RS_IO_OPERATION_TIMEOUT`): BodyTimeoutError, 400 `Timeout while receiving data`.
 */
import { withTimeout } from "./r2";

/** A request body the client got wrong: short, long, broken or stalled. Answered with 400. */
export class BodyLengthError extends Error {
  override name = "BodyLengthError";
}

export const RECEIVE_TIMEOUT_MESSAGE = "Timeout while receiving data";

/** The client sent nothing for the I/O timeout while a read waited for its body. */
export class BodyTimeoutError extends BodyLengthError {
  override name = "BodyTimeoutError";
  constructor() {
    super(RECEIVE_TIMEOUT_MESSAGE);
  }
}

/**
 * A compressed request body that could not be decoded: corrupt, truncated, or failing its checksum.
 * Answered with 400 like every other body fault, with a message of its own so the sender can tell it
 * from a body of the wrong length.
 */
export class BodyDecodeError extends BodyLengthError {
  override name = "BodyDecodeError";
}

export const shorterBody = () => new BodyLengthError("Content is shorter than expected: no more data to read");
export const longerBody = () => new BodyLengthError("Content is bigger than expected in content-length header");

/**
 * `read` settled, or BodyTimeoutError after `timeoutMs` without it. The timer runs only while we
 * wait for the client, never while our consumer (R2, the bucket object) is busy.
 */
export async function timedRead<T>(read: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeoutError()), timeoutMs);
  });
  try {
    return await Promise.race([read, stalled]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/**
 * Most bytes one read asks of a byte stream. A request body handed out by the default reader comes
 * in 4 KiB chunks (25,600 reads, timers and writes for 100 MiB); a BYOB read into a buffer this big
 * takes whatever has arrived, up to all of it, so a fast client fills most reads and a slow one
 * still gets each of its bytes through as they come (the stall timer sees every one).
 */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** Reads of a body: into buffers of our size when it is a byte stream, else its own chunks. */
export interface ChunkSource {
  read(want: number): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(): Promise<void>;
}

export function chunkSource(body: ReadableStream<Uint8Array>): ChunkSource {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream (a decoded body): it throws before locking, so a default reader can have it.
  }
  if (byob !== null) {
    const reader = byob;
    // A buffer the last read filled only a little: its bytes were copied out, so it is reused.
    let spare: ArrayBuffer | null = null;
    return {
      async read(want) {
        // One byte past the announced length is enough to see a body that is too long.
        const size = Math.max(1, Math.min(want, READ_CHUNK_BYTES));
        const buffer = spare !== null && spare.byteLength >= size ? spare : new ArrayBuffer(size);
        spare = null;
        const result = await reader.read(new Uint8Array(buffer, 0, size));
        const { value } = result;
        // A slow client fills a read with tens of KiB: copying those beats a fresh 1 MiB buffer each.
        if (result.done || value === undefined || value.byteLength * 4 > value.buffer.byteLength) return result;
        spare = value.buffer;
        return { done: false, value: value.slice() };
      },
      cancel: () => reader.cancel(),
    };
  }
  const reader = body.getReader();
  return { read: () => reader.read(), cancel: () => reader.cancel() };
}

/** The FixedLengthStream's writer failed: R2 stopped reading, its own error says why. */
class ConsumerGone extends Error {
  override name = "ConsumerGone";
}

/**
 * Copies exactly `length` bytes of `body` into `writer`, each wait for the client timed with
 * `ioTimeoutMs`, and closes it. A body of the wrong length, broken or stalled throws
 * BodyLengthError (or its own BodyLengthError, e.g. a decode fault), a failed write ConsumerGone;
 * either way the body is cancelled, so the client's connection is let go.
 */
async function pumpTimed(
  body: ReadableStream<Uint8Array>,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  length: number,
  ioTimeoutMs: number,
): Promise<void> {
  const source = chunkSource(body);
  let received = 0;
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await timedRead(source.read(length - received + 1), ioTimeoutMs);
      } catch (error) {
        // A stall, or a decoded body that failed, keeps its own message; anything else is a client
        // that went away mid-body.
        throw error instanceof BodyLengthError ? error : shorterBody();
      }
      if (result.done) break;
      received += result.value.byteLength;
      if (received > length) throw longerBody();
      if (result.value.byteLength > 0) await writer.write(result.value).catch(consumerGone);
    }
    if (received < length) throw shorterBody();
    await writer.close().catch(consumerGone);
  } catch (error) {
    await source.cancel().catch(() => {});
    throw error;
  }
}

const consumerGone = (error: unknown): never => {
  throw new ConsumerGone(String(error));
};

/**
 * Streams exactly `length` bytes of `body` into R2 under `key`. A body of the wrong length throws
 * BodyLengthError, one that stalls for `ioTimeoutMs` BodyTimeoutError; an R2 failure or timeout
 * throws whatever R2 threw. Pass a body that ends or errors on its own (a sub-stream of a reader
 * that times out) with `ioTimeoutMs` null.
 *
 * Without a timeout the bytes move through a native pipe (body → FixedLengthStream → R2; a JS
 * read/write loop of 4 KiB chunks ran at ~0.6× a direct put). With one, a JS loop copies the body
 * into the FixedLengthStream in reads of up to READ_CHUNK_BYTES, each timed: a native pipe cannot
 * be watched for a stall. FixedLengthStream enforces the length (too many bytes or an early end
 * error the pipe), so whoever failed first tells the client's fault (a short, long or broken body:
 * 400) from R2's.
 */
export async function streamToR2(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array> | null,
  length: number,
  timeoutMs: number,
  ioTimeoutMs: number | null,
): Promise<void> {
  if (!body) throw shorterBody();
  if (ioTimeoutMs !== null) return streamTimedToR2(bucket, key, body, length, timeoutMs, ioTimeoutMs);
  const fixed = new FixedLengthStream(length);
  let firstFailure: "client" | "r2" | undefined;
  const piping = body.pipeTo(fixed.writable).catch((error: unknown) => {
    firstFailure ??= "client";
    throw error;
  });
  const putting = withTimeout(bucket.put(key, fixed.readable), timeoutMs, "put").catch(async (error: unknown) => {
    firstFailure ??= "r2";
    // A failed put stops the pipe (it would otherwise wait for a reader forever).
    await fixed.readable.cancel(error).catch(() => {});
    throw error;
  });
  const [piped, put] = await Promise.allSettled([piping, putting]);
  if (piped.status === "fulfilled" && put.status === "fulfilled") return;
  // A stalled client and undecodable bytes are faults of their own, reported as they are.
  const own = [piped, put].find(
    (result) =>
      result.status === "rejected" && (result.reason instanceof BodyTimeoutError || result.reason instanceof BodyDecodeError),
  );
  if (own?.status === "rejected") throw own.reason;
  const reasons = [piped, put].flatMap((result) => (result.status === "rejected" ? [String(result.reason)] : []));
  // FixedLengthStream's own complaint, on whichever side saw it first, is a body of the wrong length.
  const lengthFault = reasons.find((reason) => reason.includes("FixedLengthStream"));
  if (lengthFault !== undefined || (piped.status === "rejected" && firstFailure === "client")) {
    await body.cancel().catch(() => {});
    throw lengthFault !== undefined && !lengthFault.includes("did not see all expected bytes") ? longerBody() : shorterBody();
  }
  if (put.status === "rejected") throw put.reason;
  throw piped.status === "rejected" ? piped.reason : new Error("R2 put failed");
}

/**
 * streamToR2 of a request body that may stall: pumpTimed feeds the FixedLengthStream. The first
 * side to fail tells whose fault it is: the client's (its BodyLengthError aborts the stream, so R2
 * stores nothing) or R2's (its error aborts the writer, so a pending write ends the pump).
 */
async function streamTimedToR2(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  length: number,
  timeoutMs: number,
  ioTimeoutMs: number,
): Promise<void> {
  const fixed = new FixedLengthStream(length);
  const writer = fixed.writable.getWriter();
  let firstFailure: "client" | "r2" | undefined;
  const pumping = pumpTimed(body, writer, length, ioTimeoutMs).catch(async (error: unknown) => {
    if (!(error instanceof ConsumerGone)) {
      firstFailure ??= "client";
      await writer.abort(error).catch(() => {});
    }
    throw error;
  });
  const putting = withTimeout(bucket.put(key, fixed.readable), timeoutMs, "put").catch(async (error: unknown) => {
    firstFailure ??= "r2";
    await writer.abort(error).catch(() => {});
    throw error;
  });
  const [pumped, put] = await Promise.allSettled([pumping, putting]);
  if (pumped.status === "fulfilled" && put.status === "fulfilled") return;
  if (firstFailure === "client" && pumped.status === "rejected") throw pumped.reason;
  if (put.status === "rejected") throw put.reason;
  // The pump's writes failed and yet the put went through: nothing a client did.
  throw new Error("R2 put failed: the upload stream ended early");
}
