/**
 * The body of every read, single record or batch: record contents concatenated in body order, with
 * an exact Content-Length. Staged records arrive inline from the bucket object; large records are piped
 * from their own objects; records of sealed blocks come either from a cached whole block (small
 * blocks, so reading a block's records over many batches costs one get) or from ranged gets that
 * merge neighbouring records into one range, streamed without buffering (large blocks, where a
 * selective query must not download megabytes it does not need).
 */
import { blockCache } from "./block-cache";
import { R2_TIMEOUT_MS, withTimeout } from "./r2";

/**
 * Where a read finds a record's bytes: inline (staged in SQLite), a range of an R2 object (`whole`:
 * the object is the record; `objectBytes`: the object's size when known), or none (HEAD, empty).
 */
export type BodyLocation =
  | { kind: "none" }
  | { kind: "inline"; bytes: ArrayBuffer }
  | { kind: "r2"; key: string; offset: number; whole?: boolean; objectBytes?: number | null };

export interface BodyPart {
  size: number;
  body: BodyLocation;
}

/** A record's stored bytes are gone (evicted or deleted since the index read). */
export class MissingBytesError extends Error {
  override name = "MissingBytesError";
}

/** Blocks up to this size are fetched whole and cached; larger ones are read by ranges. */
export const WHOLE_BLOCK_MAX_BYTES = 2 * 1024 * 1024;
/** Two records of one block this close together are fetched in one ranged get. */
export const RANGE_MERGE_GAP_BYTES = 64 * 1024;

type R2Part = BodyPart & { body: Extract<BodyLocation, { kind: "r2" }> };

/** One step of producing the body: a part on its own, or a ranged get covering several parts. */
export type BodyStep =
  | { kind: "single"; part: BodyPart }
  | { kind: "range"; key: string; offset: number; length: number; parts: R2Part[] };

const isRangedBlockPart = (part: BodyPart): part is R2Part =>
  part.body.kind === "r2" &&
  !part.body.whole &&
  (part.body.objectBytes === null || part.body.objectBytes === undefined || part.body.objectBytes > WHOLE_BLOCK_MAX_BYTES);

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
 * bytes are in hand (a buffer) or every object of the stream is open; if it throws, nothing is
 * returned. A stored object or block that is gone throws MissingBytesError.
 */
export async function batchBody(
  records: R2Bucket,
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
    const block = await blockCache.get(records, body.key);
    if (!block) throw new MissingBytesError("A record of this batch is broken: its block is missing from storage");
    blocks.set(body.key, block);
  }

  const inMemory = steps.every((step) => step.kind === "single" && (step.part.body.kind !== "r2" || !step.part.body.whole));
  if (inMemory) {
    const bytes = concatInMemory(steps, blocks, total);
    await beforeEnd();
    return bytes;
  }

  // Open every object the stream needs before `beforeEnd`, so a missing or failing object is a
  // clean 500 that leaves the query where it was. Clients may ask for the next batch before they
  // read this body (reduct-js streams a batch's last record), so `beforeEnd` cannot wait for it.
  const opened = await Promise.all(
    steps.map(async (step) => {
      const key =
        step.kind === "range" ? step.key : step.part.body.kind === "r2" && step.part.body.whole ? step.part.body.key : null;
      if (key === null) return null;
      const options = step.kind === "range" ? { range: { offset: step.offset, length: step.length } } : undefined;
      const object = await withTimeout(records.get(key, options), R2_TIMEOUT_MS, "get");
      if (!object) throw new MissingBytesError("A record of this batch is broken: its stored bytes are missing");
      return object.body;
    }),
  );
  await beforeEnd();
  // One object that holds exactly the body (a large record, or one ranged record): its own stream.
  const [only] = steps;
  if (steps.length === 1 && only && opened[0] && (only.kind === "single" || only.parts.length === 1)) return opened[0];

  const { readable, writable } = new FixedLengthStream(total);
  const writer = writable.getWriter();
  (async () => {
    for (const [index, step] of steps.entries()) {
      const stream = opened[index];
      if (step.kind === "range") {
        if (!stream) throw new Error(`block ${step.key} was not opened`);
        await writeRange(stream, step, writer);
        continue;
      }
      const { body, size } = step.part;
      if (body.kind === "inline") await writer.write(new Uint8Array(body.bytes));
      else if (body.kind === "r2" && !body.whole) {
        const block = blocks.get(body.key);
        if (!block) throw new Error(`block ${body.key} was not loaded`);
        await writer.write(block.subarray(body.offset, body.offset + size));
      } else if (body.kind === "r2") {
        if (!stream) throw new Error(`record object ${body.key} was not opened`);
        await copyStream(stream, writer);
      } else if (size > 0) {
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

/**
 * Bytes [start, start + length) of one record, fetching only that range from R2 (a record's own
 * object or its slice of a sealed block); staged records are sliced in memory. Throws
 * MissingBytesError when the stored object is gone.
 */
export async function recordRangeBody(
  records: R2Bucket,
  body: BodyLocation,
  start: number,
  length: number,
): Promise<ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null> {
  if (length === 0 || body.kind === "none") return null;
  if (body.kind === "inline") return new Uint8Array(body.bytes.slice(start, start + length));
  const offset = (body.whole ? 0 : body.offset) + start;
  const object = await withTimeout(records.get(body.key, { range: { offset, length } }), R2_TIMEOUT_MS, "get");
  if (!object) throw new MissingBytesError("The linked record is broken: its stored bytes are missing");
  return object.body;
}
