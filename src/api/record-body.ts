/**
 * Moving record bodies at the edge. Small bodies are read whole (they are staged in the bucket's
 * SQLite); large ones are piped straight into R2 through a FixedLengthStream, never buffered. Both
 * insist on exactly the announced length: a short or long body is the client's fault (400) and
 * nothing is stored.
 */
import { badRequest } from "../errors";
import { withTimeout } from "../storage/r2";

export class BodyLengthError extends Error {
  override name = "BodyLengthError";
}

const shorter = () => new BodyLengthError("Content is shorter than expected: no more data to read");
const longer = () => new BodyLengthError("Content is bigger than expected in content-length header");

/** Reads exactly `length` bytes from `body` (the whole body) or throws BodyLengthError. */
export async function readExactly(body: ReadableStream<Uint8Array> | null, length: number): Promise<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  if (!body) {
    if (length > 0) throw shorter();
    return bytes.buffer;
  }
  const reader = body.getReader();
  let filled = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (filled + value.byteLength > length) throw longer();
      bytes.set(value, filled);
      filled += value.byteLength;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    if (error instanceof BodyLengthError) throw error;
    throw shorter(); // the client went away mid-body
  }
  if (filled !== length) throw shorter();
  return bytes.buffer;
}

/** A pass-through that fails the stream when it carries more or fewer than `length` bytes. */
export function exactLengthGuard(length: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > length) throw longer();
      controller.enqueue(chunk);
    },
    flush() {
      if (seen !== length) throw shorter();
    },
  });
}

/**
 * Streams exactly `length` bytes of `body` into R2 under `key`. A body of the wrong length throws
 * BodyLengthError; an R2 failure or timeout throws whatever R2 threw.
 */
export async function streamToR2(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array> | null,
  length: number,
  timeoutMs: number,
): Promise<void> {
  if (!body) throw shorter();
  // Tell the client's faults (short, long or broken body) from R2's: only the first are a 400.
  let clientError: BodyLengthError | undefined;
  const reader = body.getReader();
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch {
        clientError = shorter(); // the client went away mid-body
        controller.error(clientError);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const guard = exactLengthGuard(length);
  const fixed = new FixedLengthStream(length);
  const stopPump = new AbortController();
  const pump = source
    .pipeThrough(guard)
    .pipeTo(fixed.writable, { signal: stopPump.signal })
    .catch((error) => {
      if (error instanceof BodyLengthError) clientError ??= error;
      throw error;
    });
  // A failed put stops reading the body (nothing would drain the pipe any more).
  const putting = withTimeout(bucket.put(key, fixed.readable), timeoutMs, "put").catch((error) => {
    stopPump.abort(error);
    throw error;
  });
  const [pumped, put] = await Promise.allSettled([pump, putting]);
  if (clientError) throw clientError;
  if (put.status === "rejected") throw put.reason;
  if (pumped.status === "rejected") throw pumped.reason;
}

/** Maps a body-length failure to the client error it is. */
export function asClientError(error: unknown): unknown {
  return error instanceof BodyLengthError ? badRequest(error.message) : error;
}
