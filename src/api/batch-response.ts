/**
 * The body of a batched read: record contents concatenated in body order, streamed with an exact
 * Content-Length. Staged records arrive inline from the bucket object; large records are piped
 * from their own objects; records of sealed blocks come either from a cached whole block (small
 * blocks, so reading a block's records over many batches costs one get) or from ranged gets that
 * merge neighbouring records into one range, streamed without buffering (large blocks, where a
 * selective query must not download megabytes it does not need).
 */
import type { QueryBody } from "../bucket/query-engine";
import { internal } from "../errors";
import { R2_TIMEOUT_MS, withTimeout } from "../storage/r2";
import { blockCache } from "./block-cache";

export interface BodyPart {
  size: number;
  body: QueryBody;
}

/** Blocks up to this size are fetched whole and cached; larger ones are read by ranges. */
export const WHOLE_BLOCK_MAX_BYTES = 2 * 1024 * 1024;
/** Two records of one block this close together are fetched in one ranged get. */
export const RANGE_MERGE_GAP_BYTES = 64 * 1024;

type R2Part = BodyPart & { body: Extract<QueryBody, { kind: "r2" }> };

/** One step of producing the body: a part on its own, or a ranged get covering several parts. */
export type BodyStep =
  | { kind: "single"; part: BodyPart }
  | { kind: "range"; key: string; offset: number; length: number; parts: R2Part[] };

const isRangedBlockPart = (part: BodyPart): part is R2Part =>
  part.body.kind === "r2" &&
  !part.body.whole &&
  (part.body.objectBytes === null || part.body.objectBytes > WHOLE_BLOCK_MAX_BYTES);

/** Groups consecutive records of one large block (ascending, small gaps) into ranged gets. */
export function planBody(parts: readonly BodyPart[]): BodyStep[] {
  const steps: BodyStep[] = [];
  for (const part of parts) {
    if (!isRangedBlockPart(part)) {
      steps.push({ kind: "single", part });
      continue;
    }
    const last = steps[steps.length - 1];
    const end = last?.kind === "range" ? last.offset + last.length : -1;
    if (
      last?.kind === "range" &&
      last.key === part.body.key &&
      part.body.offset >= end &&
      part.body.offset - end <= RANGE_MERGE_GAP_BYTES
    ) {
      last.length = part.body.offset + part.size - last.offset;
      last.parts.push(part);
    } else {
      steps.push({ kind: "range", key: part.body.key, offset: part.body.offset, length: part.size, parts: [part] });
    }
  }
  return steps;
}

type ChunkWriter = Pick<WritableStreamDefaultWriter<Uint8Array>, "write">;

/** Passes chunks on one write late, so a body's last bytes leave only when `release` is called. */
class HoldLastChunk implements ChunkWriter {
  private held: Uint8Array | null = null;
  constructor(private readonly writer: ChunkWriter) {}
  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength === 0) return;
    const previous = this.held;
    this.held = chunk;
    if (previous) await this.writer.write(previous);
  }
  async release(): Promise<void> {
    const last = this.held;
    this.held = null;
    if (last) await this.writer.write(last);
  }
}

async function copyStream(source: ReadableStream<Uint8Array>, writer: ChunkWriter): Promise<void> {
  const reader = source.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    await writer.write(value);
  }
}

/** Writes the records of a ranged get, skipping the gaps between them. */
async function writeRange(
  body: ReadableStream<Uint8Array>,
  step: Extract<BodyStep, { kind: "range" }>,
  writer: ChunkWriter,
): Promise<void> {
  const wanted = step.parts.map((part) => [part.body.offset - step.offset, part.body.offset - step.offset + part.size] as const);
  const reader = body.getReader();
  let position = 0;
  let next = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunkEnd = position + value.byteLength;
    for (let i = next; i < wanted.length; i++) {
      const [start, end] = wanted[i] ?? [0, 0];
      if (start >= chunkEnd) break;
      const from = Math.max(start, position);
      const to = Math.min(end, chunkEnd);
      if (to > from) await writer.write(value.subarray(from - position, to - position));
      if (end <= chunkEnd) next = i + 1;
    }
    position = chunkEnd;
  }
  if (position < step.length) throw new Error(`ranged get of ${step.key} ended after ${position} of ${step.length} bytes`);
}

/**
 * Fetches the small blocks the batch needs before the response starts (so a missing object is a
 * clean 500), then returns exactly Σ size bytes, or null for an empty body: one buffer when every
 * record is already in memory (staged bytes or cached blocks: the common case of small records,
 * copied once instead of one stream write per record), else a stream. `beforeEnd` runs once all
 * bytes are in hand: before returning a buffer, or before a stream's last byte is released; if
 * it throws, a buffer is not returned and a stream is aborted.
 */
export async function batchBody(
  bucket: R2Bucket,
  parts: readonly BodyPart[],
  beforeEnd: () => Promise<void> = async () => {},
): Promise<ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null> {
  const total = parts.reduce((sum, part) => sum + part.size, 0);
  if (total === 0) {
    await beforeEnd();
    return null;
  }
  const steps = planBody(parts);
  const blocks = new Map<string, Uint8Array>();
  for (const step of steps) {
    const body = step.kind === "single" ? step.part.body : undefined;
    if (body?.kind !== "r2" || body.whole || blocks.has(body.key)) continue;
    const block = await blockCache.get(bucket, body.key);
    if (!block) throw internal("A record of this batch is broken: its block is missing from storage");
    blocks.set(body.key, block);
  }

  const inMemory = steps.every((step) => step.kind === "single" && (step.part.body.kind !== "r2" || !step.part.body.whole));
  if (inMemory) {
    const bytes = concatInMemory(steps, blocks, total);
    await beforeEnd();
    return bytes;
  }

  const { readable, writable } = new FixedLengthStream(total);
  const output = writable.getWriter();
  // The client sees the body end only after `beforeEnd` (a reader waits for Content-Length bytes).
  const writer = new HoldLastChunk(output);
  (async () => {
    for (const step of steps) {
      if (step.kind === "range") {
        const object = await withTimeout(
          bucket.get(step.key, { range: { offset: step.offset, length: step.length } }),
          R2_TIMEOUT_MS,
          "get",
        );
        if (!object) throw new Error(`block ${step.key} is missing`);
        await writeRange(object.body, step, writer);
        continue;
      }
      const { body, size } = step.part;
      if (body.kind === "inline") await writer.write(new Uint8Array(body.bytes));
      else if (body.kind === "r2" && !body.whole) {
        const block = blocks.get(body.key);
        if (!block) throw new Error(`block ${body.key} was not loaded`);
        await writer.write(block.subarray(body.offset, body.offset + size));
      } else if (body.kind === "r2") {
        const object = await withTimeout(bucket.get(body.key), R2_TIMEOUT_MS, "get");
        if (!object) throw new Error(`record object ${body.key} is missing`);
        await copyStream(object.body, writer);
      } else if (size > 0) {
        throw new Error("a record with content has no body location");
      }
    }
    await beforeEnd();
    await writer.release();
    await output.close();
  })().catch(async (error) => {
    console.error("batched read aborted:", error);
    await output.abort(error).catch(() => {});
  });
  return readable;
}

/** The batch body from records already in memory (inline bytes and cached blocks), in order. */
function concatInMemory(
  steps: readonly BodyStep[],
  blocks: ReadonlyMap<string, Uint8Array>,
  total: number,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const step of steps) {
    if (step.kind !== "single") throw new Error("a ranged get is not in memory");
    const { body, size } = step.part;
    if (body.kind === "inline") out.set(new Uint8Array(body.bytes), offset);
    else if (body.kind === "r2") {
      const block = blocks.get(body.key);
      if (!block) throw new Error(`block ${body.key} was not loaded`);
      out.set(block.subarray(body.offset, body.offset + size), offset);
    } else if (size > 0) {
      throw new Error("a record with content has no body location");
    }
    offset += size;
  }
  if (offset !== total) throw new Error(`batch body is ${offset} bytes, expected ${total}`);
  return out;
}
