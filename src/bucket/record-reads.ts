/** Reading one record: its metadata and where its bytes are. Synchronous, over the record index. */
import { fail, type Result } from "../errors";
import type { BodyLocation, RecordView } from "../model/records";
import type { RecordIndex, RecordRow } from "./record-index";
import { entryNotFound, recordNotFound, stillBeingWritten } from "./record-ops";

/** One record by timestamp, or the latest when `ts` is null; `withBody` false (HEAD) skips the bytes. */
export function readRecord(
  index: RecordIndex,
  bucket: string,
  entryName: string,
  ts: number | null,
  withBody: boolean,
): Result<{ record: RecordView; body: BodyLocation }> {
  const entry = index.entry(entryName);
  if (!entry) return entryNotFound(bucket, entryName);
  const record = ts === null ? index.latestReady(entry.id) : index.record(entry.id, ts);
  if (!record) {
    return ts === null ? fail(404, `No records in entry ${bucket}/${entryName}`) : recordNotFound(bucket, entryName, ts);
  }
  if (record.state === "pending") return stillBeingWritten(bucket, entryName, record.ts);
  const view: RecordView = {
    entry: entryName,
    ts: record.ts,
    size: record.size,
    contentType: record.content_type,
    labels: record.labels,
  };
  let body: BodyLocation = { kind: "none" };
  if (withBody && record.size > 0) {
    if (record.location === "staged") {
      body = { kind: "inline", bytes: stagedBytes(index, bucket, record) };
    } else {
      body = { kind: "r2", key: record.object_key ?? "", offset: record.object_offset ?? 0 };
    }
  }
  return { ok: true, record: view, body };
}

/** The bytes of a record staged in the object, which its chunk must hold. */
export function stagedBytes(
  index: RecordIndex,
  bucket: string,
  record: Pick<RecordRow, "entry_id" | "ts" | "chunk_id" | "object_offset" | "size">,
): ArrayBuffer {
  const bytes = index.stagedPayload(record);
  if (!bytes) throw new Error(`staged payload of ${bucket} entry ${record.entry_id} at ${record.ts} is missing`);
  return bytes;
}
