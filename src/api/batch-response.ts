/**
 * The body of a batched read: record contents concatenated in body order, streamed with an exact
 * Content-Length. Staged records arrive inline from the bucket object, sealed ones are sliced from
 * cached block objects (one get per block), large ones are piped from their own R2 objects —
 * memory stays bounded by the batch size limit plus the block cache.
 */
import type { QueryBody } from "../bucket/query-engine";
import { internal } from "../errors";
import { R2_TIMEOUT_MS, withTimeout } from "../storage/r2";
import { blockCache } from "./block-cache";

export interface BodyPart {
  size: number;
  body: QueryBody;
}

/**
 * Fetches every block the batch needs before the response starts (so a missing object is a clean
 * 500), then returns a stream producing exactly Σ size bytes, or null for an empty body.
 */
export async function batchBody(bucket: R2Bucket, parts: readonly BodyPart[]): Promise<ReadableStream<Uint8Array> | null> {
  const total = parts.reduce((sum, part) => sum + part.size, 0);
  if (total === 0) return null;
  const blocks = new Map<string, Uint8Array>();
  for (const part of parts) {
    if (part.body.kind !== "r2" || part.body.whole || blocks.has(part.body.key)) continue;
    const block = await blockCache.get(bucket, part.body.key);
    if (!block) throw internal("A record of this batch is broken: its block is missing from storage");
    blocks.set(part.body.key, block);
  }

  const { readable, writable } = new FixedLengthStream(total);
  const writer = writable.getWriter();
  (async () => {
    for (const part of parts) {
      const body = part.body;
      if (body.kind === "inline") await writer.write(new Uint8Array(body.bytes));
      else if (body.kind === "r2" && !body.whole) {
        const block = blocks.get(body.key);
        if (!block) throw new Error(`block ${body.key} was not loaded`);
        await writer.write(block.subarray(body.offset, body.offset + part.size));
      } else if (body.kind === "r2") {
        const object = await withTimeout(bucket.get(body.key), R2_TIMEOUT_MS, "get");
        if (!object) throw new Error(`record object ${body.key} is missing`);
        const reader = object.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await writer.write(value);
        }
      } else if (part.size > 0) {
        throw new Error("a record with content has no body location");
      }
    }
    await writer.close();
  })().catch(async (error) => {
    console.error("batched read aborted:", error);
    await writer.abort(error).catch(() => {});
  });
  return readable;
}
