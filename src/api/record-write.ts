/**
 * The one write path of the edge. A single-record write (`POST …/:entry?ts=`) is a one-record batch;
 * v1 (`POST …/batch`) and v2 (`POST /io/{bucket}/write`) bodies are record contents concatenated in
 * body order. A body is read once, front to back, and never held whole: small records are collected
 * into chunks of at most `SMALL_CHUNK_MAX_BYTES` and written with one `writeRecords` RPC per chunk;
 * large records are piped straight into R2 (reserve → stream → commit). A record the bucket refuses
 * (duplicate, quota, missing bucket) still has its bytes consumed so later records stay aligned;
 * its failure is returned for a per-record error header.
 *
 * A body that ends early fails the whole request (400); records fully received before the break
 * stay written and the record in flight is aborted, so each record is either readable or absent.
 * Bytes after the last record of a plain batch (possible only without a declared length) are
 * ignored; a single record, and a decoded batch (`wholeBody`), must be the whole body, checked
 * before the last chunk of small records is written. A decoded body that fails to decode keeps
 * only the chunks written before the failure.
 *
 * Also here: the checks both protocols make on a request before anything is stored, and the
 * conversion of parsed label updates to the bucket object's form.
 */
import type { BucketObject } from "../bucket/bucket-object";
import type { LabelChanges, RecordMeta } from "../bucket/record-ops";
import { type ErrorInfo, HttpError, payloadTooLarge } from "../errors";
import { SMALL_RECORD_MAX_BYTES } from "../storage/blocks";
import type { PayloadBucket } from "../storage/r2-binding";
import { BodyDecodeError, BodyLengthError, streamToR2 } from "../storage/record-put";
import { asClientError, SequentialBodyReader } from "./body-reader";
import type { LabelUpdate } from "./headers/common";
import { validateContentType } from "./headers/single-record";

/** Small records sent to the bucket object in one RPC: at most this many payload bytes… */
export const SMALL_CHUNK_MAX_BYTES = 4 * 1024 * 1024;
/** …and at most this many records (each is its own transaction in the object). */
export const SMALL_CHUNK_MAX_RECORDS = 1000;
/** A streamed upload must finish this long before its lease runs out. */
const LEASE_MARGIN_MS = 5_000;

/** One record to write, with whatever the caller needs to report its failure. */
export interface BatchWriteItem {
  meta: RecordMeta;
}

export interface BatchWriteFailure<T extends BatchWriteItem> {
  item: T;
  error: ErrorInfo;
}

export interface WriteTarget {
  bucket: string;
  stub: DurableObjectStub<BucketObject>;
  records: PayloadBucket;
  /** How long the body may send nothing (`RS_IO_OPERATION_TIMEOUT`). */
  ioTimeoutMs: number;
}

/**
 * Writes `items` (in body order) from `body`. Returns the records the bucket refused; throws
 * HttpError 400 when the body is shorter than the records need, or a fault (RPC, R2) as is.
 */
export async function writeBatchBody<T extends BatchWriteItem>(
  target: WriteTarget,
  body: ReadableStream<Uint8Array> | null,
  items: readonly T[],
  options: { wholeBody: boolean } = { wholeBody: false },
): Promise<Array<BatchWriteFailure<T>>> {
  const expected = items.reduce((sum, item) => sum + item.meta.size, 0);
  const reader = new SequentialBodyReader(body, target.ioTimeoutMs, expected);
  const failures: Array<BatchWriteFailure<T>> = [];
  let chunk: Array<{ item: T; payload: ArrayBuffer }> = [];
  let chunkBytes = 0;

  const flush = async () => {
    if (chunk.length === 0) return;
    const sent = chunk;
    chunk = [];
    chunkBytes = 0;
    const result = await target.stub.writeRecords(sent.map(({ item, payload }) => ({ meta: item.meta, payload })));
    if (!result.ok) {
      // The bucket itself is unavailable (missing, being renamed): every record of the chunk failed.
      for (const { item } of sent) failures.push({ item, error: result.error });
      return;
    }
    result.outcomes.forEach((outcome, i) => {
      const sentItem = sent[i];
      if (!outcome.ok && sentItem) failures.push({ item: sentItem.item, error: outcome.error });
    });
  };

  try {
    for (const item of items) {
      const { size } = item.meta;
      if (size <= SMALL_RECORD_MAX_BYTES) {
        if (chunkBytes + size > SMALL_CHUNK_MAX_BYTES || chunk.length >= SMALL_CHUNK_MAX_RECORDS) await flush();
        const payload = reader.readBuffered(size) ?? (await reader.readExactly(size));
        chunk.push({ item, payload });
        chunkBytes += size;
        continue;
      }
      // Keep body order: earlier small records are written before a large one reserves quota.
      await flush();
      const failure = await streamLargeRecord(target, reader, item.meta);
      if (failure) failures.push({ item, error: failure });
    }
  } catch (error) {
    await reader.cancel();
    // Records received in full stay written; the rest of the request fails. Bytes a decompressor
    // gave up on are not trusted: a checksum fails only after the bytes it covers were decoded.
    if (error instanceof BodyLengthError && !(error instanceof BodyDecodeError)) await flush();
    throw asClientError(error);
  }
  try {
    if (options.wholeBody) await reader.expectEnd();
  } catch (error) {
    await reader.cancel();
    throw asClientError(error);
  }
  await flush();
  await reader.cancel();
  return failures;
}

/** The bucket refused a large record, before its bytes were read (reservation) or after (commit). */
interface UploadRefusal {
  error: ErrorInfo;
  bytesRead: boolean;
}

/**
 * Reserves, streams and commits one large record: the upload protocol of every write path. Returns
 * the bucket's refusal or null; a refused reservation leaves the bytes unread, a refused commit
 * (the quota changed while they were in flight) has read them. A short, broken or stalled body or
 * an R2 fault aborts the reservation and throws.
 */
async function uploadLargeRecord(
  target: WriteTarget,
  meta: RecordMeta,
  bytes: { stream: () => ReadableStream<Uint8Array> | null; ioTimeoutMs: number | null },
): Promise<UploadRefusal | null> {
  const { stub } = target;
  const reserved = await stub.reserveUpload(meta);
  if (!reserved.ok) return { error: reserved.error, bytesRead: false };
  const { objectKey, leaseMs } = reserved;
  try {
    await streamToR2(target.records, objectKey, bytes.stream(), meta.size, leaseMs - LEASE_MARGIN_MS, bytes.ioTimeoutMs);
  } catch (error) {
    await stub.abortUpload(objectKey);
    throw error;
  }
  const committed = await stub.commitUpload(meta.entry, meta.ts, objectKey);
  if (!committed.ok) await stub.abortUpload(objectKey); // never leave it pending
  return committed.ok ? null : { error: committed.error, bytesRead: true };
}

/** A large record of a batch: its bytes are a sub-stream of the body, whose reads time out already. */
async function streamLargeRecord(target: WriteTarget, reader: SequentialBodyReader, meta: RecordMeta): Promise<ErrorInfo | null> {
  const refused = await uploadLargeRecord(target, meta, { stream: () => reader.take(meta.size), ioTimeoutMs: null });
  // Later records stay aligned: skip the bytes only if nothing read them.
  if (refused && !refused.bytesRead) await reader.skip(meta.size);
  return refused?.error ?? null;
}

/**
 * A single-record write: a one-record batch whose record is the whole body. A large one is piped
 * from the request body itself (a native pipe, watched for stalls); a refusal or a body of the
 * wrong length fails the request.
 */
export async function writeSingleRecord(
  target: WriteTarget,
  body: ReadableStream<Uint8Array> | null,
  meta: RecordMeta,
): Promise<void> {
  let refused: ErrorInfo | null;
  if (meta.size > SMALL_RECORD_MAX_BYTES) {
    let refusal: UploadRefusal | null;
    try {
      refusal = await uploadLargeRecord(target, meta, { stream: () => body, ioTimeoutMs: target.ioTimeoutMs });
    } catch (error) {
      throw asClientError(error);
    }
    if (refusal && !refusal.bytesRead) await body?.cancel().catch(() => {});
    refused = refusal?.error ?? null;
  } else {
    const [failure] = await writeBatchBody(target, body, [{ meta }], { wholeBody: true });
    refused = failure?.error ?? null;
  }
  // ReductStore answers 409 to a write while the timestamp's upload is in flight; a batch says 425
  // per record instead, so a replication sender retries it rather than taking it as delivered.
  if (refused?.status === 425) throw new HttpError(409, `A record with timestamp ${meta.ts} already exists`);
  if (refused) throw new HttpError(refused.status, refused.message);
}

/**
 * Per-record checks of a batch write, made before any byte is stored so that a refused request
 * changes nothing: each record within the record size limit (413, as for single records) and a
 * well-formed content type (422).
 */
export function checkRecordsToWrite(records: readonly { size: number; contentType: string }[], maxRecordBytes: number): void {
  for (const { size, contentType } of records) {
    if (size > maxRecordBytes) {
      throw payloadTooLarge(`Record of ${size} bytes is larger than the limit of ${maxRecordBytes} bytes`);
    }
    validateContentType(contentType);
  }
}

/** A parsed label update as the bucket object takes it: pairs, removals as empty values. */
export function labelChanges(update: LabelUpdate): LabelChanges {
  return [...Object.entries(update.set), ...update.remove.map((name): [string, string] => [name, ""])];
}
