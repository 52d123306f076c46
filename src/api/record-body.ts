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
  const fixed = new FixedLengthStream(length);
  const writer = fixed.writable.getWriter();
  const reader = body.getReader();
  // One explicit loop instead of pipeThrough/pipeTo chains: every promise is awaited here, so a
  // client that goes away leaves no stray rejection behind, and client faults (a short, long or
  // broken body: 400) are told apart from R2's.
  let clientError: BodyLengthError | undefined;
  const fail = (error: BodyLengthError): never => {
    clientError = error;
    throw error;
  };
  const pump = (async () => {
    let received = 0;
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch {
          return fail(shorter()); // the client went away mid-body
        }
        if (chunk.done) break;
        received += chunk.value.byteLength;
        if (received > length) fail(longer());
        await writer.write(chunk.value); // rejects when R2 stopped reading
      }
      if (received !== length) fail(shorter());
      await writer.close();
    } catch (error) {
      await writer.abort(error).catch(() => {});
      await reader.cancel().catch(() => {});
      throw error;
    }
  })();
  // A failed put stops the pump (its pending write would otherwise wait for a reader forever).
  const putting = withTimeout(bucket.put(key, fixed.readable), timeoutMs, "put").catch(async (error) => {
    await writer.abort(error).catch(() => {});
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
