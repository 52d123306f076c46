/**
 * Bounded reading of small request bodies (JSON documents). Large record bodies never come through
 * here: they are streamed. A body over the limit is refused with 413 before it is buffered whole.
 */
import { badRequest, payloadTooLarge, unprocessable } from "../errors";

/** JSON bodies of this API (settings, tokens, queries) are tiny; this is far above any real one. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

export async function readBoundedText(request: Request, maxBytes = MAX_JSON_BODY_BYTES): Promise<string> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw payloadTooLarge(`Request body is larger than ${maxBytes} bytes`);
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      // The client went away mid-body: its end of the request (400), not a server fault.
      await reader.cancel().catch(() => {});
      throw badRequest("Content is shorter than expected: no more data to read");
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw payloadTooLarge(`Request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** Parses a JSON body; an empty body yields `emptyValue`. Syntax errors give 422 `Invalid JSON: …`. */
export async function readJsonBody(request: Request, emptyValue: unknown = undefined): Promise<unknown> {
  const text = await readBoundedText(request);
  if (text.trim() === "") return emptyValue;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw unprocessable(`Invalid JSON: ${error instanceof Error ? error.message : "syntax error"}`);
  }
}
