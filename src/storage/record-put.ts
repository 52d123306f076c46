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
 * `body` as a stream pulled chunk by chunk with a timed read: a stalled client errors it with
 * BodyTimeoutError and the request body is cancelled, so the connection is let go. This costs
 * throughput against a native pipe (one chunk in flight, a timer per chunk); a pass-through
 * TransformStream with an interval watchdog (pipeTo with an abort signal) was tried instead: its
 * abort did not end a stalled pipe and a broken body left an unhandled rejection.
 */
export function withReceiveTimeout(body: ReadableStream<Uint8Array>, timeoutMs: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await readChunk(reader, timeoutMs);
        } catch (error) {
          await reader.cancel().catch(() => {});
          // A stall, or a decoded body that failed, keeps its own message.
          throw error instanceof BodyLengthError ? error : shorterBody();
        }
        if (result.done) controller.close();
        else controller.enqueue(result.value);
      },
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
    },
    { highWaterMark: 0 },
  );
}

/**
 * The next chunk of `reader`, or BodyTimeoutError after `timeoutMs` without one. The timer runs
 * only while we wait for the client, never while our consumer (R2, the bucket object) is busy.
 */
export async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  timeoutMs: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeoutError()), timeoutMs);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/**
 * Streams exactly `length` bytes of `body` into R2 under `key`. A body of the wrong length throws
 * BodyLengthError, one that stalls for `ioTimeoutMs` BodyTimeoutError; an R2 failure or timeout
 * throws whatever R2 threw. Pass a body that ends or errors on its own (a sub-stream of a reader
 * that times out) with `ioTimeoutMs` null.
 *
 * The bytes move through a pipe (body → FixedLengthStream → R2), native when `ioTimeoutMs` is null
 * (a JS read/write loop ran at ~0.6× a direct put). FixedLengthStream enforces the length (too many
 * bytes or an early end error the pipe), so whoever failed first tells the client's fault (a short,
 * long or broken body: 400) from R2's.
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
  const source = ioTimeoutMs === null ? body : withReceiveTimeout(body, ioTimeoutMs);
  const fixed = new FixedLengthStream(length);
  let firstFailure: "client" | "r2" | undefined;
  const piping = source.pipeTo(fixed.writable).catch((error: unknown) => {
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
    await source.cancel().catch(() => {});
    throw lengthFault !== undefined && !lengthFault.includes("did not see all expected bytes") ? longerBody() : shorterBody();
  }
  if (put.status === "rejected") throw put.reason;
  throw piped.status === "rejected" ? piped.reason : new Error("R2 put failed");
}
