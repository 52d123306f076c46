/**
 * Batch protocol v2, the write side of the multi-entry `/io` API: write,
 * label update and removal of records of many entries in one request. Responses echo
 * `x-reduct-entries` (re-encoded) and `x-reduct-start-ts` and list per-record failures as
 * `x-reduct-error-<entry index>-<delta>` on a 200. Reads (`/io/{bucket}/q`, `/read`) live elsewhere.
 */
import { Hono } from "hono";
import { requireWrite } from "../auth/policy";
import { isMetaEntry } from "../bucket/bucket-store";
import type { ItemOutcome } from "../bucket/record-ops";
import { unprocessable, unwrap } from "../errors";
import { recordsBucket } from "../storage/r2-binding";
import { declaredBatchLength, readContentCoding, writeBody } from "./body-encoding";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv } from "./context";
import {
  assertBatchContentLength,
  type BatchPosition,
  ENTRIES_HEADER,
  type ParsedBatchV2,
  parseBatchV2Remove,
  parseBatchV2Update,
  parseBatchV2Write,
  renderEntriesHeader,
  renderRecordErrorV2,
  START_TS_HEADER,
  validateEntryName,
} from "./headers";
import { checkRecordsToWrite, labelChanges, writeBatchBody } from "./record-write";

export const ioWriteRoutes = new Hono<AppEnv>();

/** The headers every v2 write-side answer carries: the request's entries and start timestamp. */
function echoFrame(c: AppContext, batch: ParsedBatchV2<unknown>): void {
  c.header(ENTRIES_HEADER, renderEntriesHeader(batch.entries));
  c.header(START_TS_HEADER, `${batch.startTs}`);
}

/** Adds one `x-reduct-error-<idx>-<delta>` header per failed outcome (outcomes in `records` order). */
function reportOutcomes(c: AppContext, records: readonly BatchPosition[], outcomes: readonly ItemOutcome[]): void {
  outcomes.forEach((outcome, i) => {
    const record = records[i];
    if (!outcome.ok && record) c.header(...renderRecordErrorV2(record.entryIndex, record.delta, outcome.error));
  });
}

// POST /api/v1/io/:bucket_name/write
ioWriteRoutes.post("/:bucket/write", async (c) => {
  const { bucket } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const headers = c.req.raw.headers;
  const coding = readContentCoding(headers);
  const batch = parseBatchV2Write(headers);
  for (const entry of batch.entries) validateEntryName(entry);
  assertBatchContentLength(declaredBatchLength(headers, coding, true), batch.records);
  checkRecordsToWrite(batch.records, c.get("config").maxRecordBytes);

  // Records arrive in body order (entry index, then timestamp). A missing bucket is reported per
  // record with an overall 200, as in the reference.
  const items = batch.records.map((record) => ({
    position: record,
    meta: { entry: record.entry, ts: record.ts, size: record.size, contentType: record.contentType, labels: record.labels },
  }));
  const target = {
    bucket,
    stub: bucketStub(c.env, bucket),
    records: recordsBucket(c.env),
    ioTimeoutMs: c.get("config").ioTimeoutMs,
  };
  const failures = await writeBatchBody(target, writeBody(c.req.raw.body, coding), items, { wholeBody: coding !== null });
  echoFrame(c, batch);
  for (const { item, error } of failures) {
    c.header(...renderRecordErrorV2(item.position.entryIndex, item.position.delta, error));
  }
  return c.body(null, 200);
});

// PATCH /api/v1/io/:bucket_name/update
ioWriteRoutes.patch("/:bucket/update", async (c) => {
  const { bucket } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const batch = parseBatchV2Update(c.req.raw.headers);
  const items = batch.records.map((record) => ({ entry: record.entry, ts: record.ts, changes: labelChanges(record) }));
  const { outcomes } = unwrap(await bucketStub(c.env, bucket).updateLabelsMany(items));
  echoFrame(c, batch);
  reportOutcomes(c, batch.records, outcomes);
  return c.body(null, 200);
});

// DELETE /api/v1/io/:bucket_name/remove
ioWriteRoutes.delete("/:bucket/remove", async (c) => {
  const { bucket } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const batch = parseBatchV2Remove(c.req.raw.headers);
  const meta = batch.entries.find(isMetaEntry);
  if (meta !== undefined) {
    throw unprocessable(`Can't delete records from system entry '${meta}'; use label update with remove=true`);
  }
  const items = batch.records.map((record) => ({ entry: record.entry, ts: record.ts }));
  const { outcomes } = unwrap(await bucketStub(c.env, bucket).removeMany(items));
  echoFrame(c, batch);
  reportOutcomes(c, batch.records, outcomes);
  return c.body(null, 200);
});
