/**
 * Batch protocol v1: write, label update and removal of many records of one entry, with
 * per-record failures as `x-reduct-error-<ts>` headers on a 200. Mounted before the entry routes
 * so `…/batch` is not taken for an entry name. Batched reads (`GET …/batch?q=`) live with queries.
 */
import { Hono } from "hono";
import { requireWrite } from "../auth/policy";
import { isMetaEntry } from "../bucket/bucket-store";
import type { ItemOutcome } from "../bucket/record-ops";
import { entryNotFound } from "../bucket/record-ops";
import { unprocessable, unwrap } from "../errors";
import { recordsBucket } from "../storage/r2-binding";
import { declaredBatchLength, readContentCoding, writeBody } from "./body-encoding";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv } from "./context";
import {
  assertBatchContentLength,
  parseBatchV1Remove,
  parseBatchV1Update,
  parseBatchV1Write,
  renderRecordErrorV1,
  validateEntryName,
} from "./headers";
import { checkRecordsToWrite, labelChanges, writeBatchBody } from "./record-write";

export const batchV1Routes = new Hono<AppEnv>();

/** Adds one `x-reduct-error-<ts>` header per failed outcome (outcomes in `timestamps` order). */
function reportOutcomes(c: AppContext, timestamps: readonly number[], outcomes: readonly ItemOutcome[]): void {
  outcomes.forEach((outcome, i) => {
    const ts = timestamps[i];
    if (!outcome.ok && ts !== undefined) c.header(...renderRecordErrorV1(ts, outcome.error));
  });
}

/** Label updates and removals answer 404 as a whole when the entry does not exist. */
async function requireEntry(c: AppContext, bucket: string, entry: string): Promise<void> {
  const { exists } = unwrap(await bucketStub(c.env, bucket).hasEntry(entry));
  if (!exists) unwrap(entryNotFound(bucket, entry));
}

// POST /api/v1/b/:bucket_name/:entry_name/batch
batchV1Routes.post("/:bucket/:entry{.+}/batch", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  validateEntryName(entry);
  const headers = c.req.raw.headers;
  const coding = readContentCoding(headers);
  const records = parseBatchV1Write(headers);
  assertBatchContentLength(declaredBatchLength(headers, coding, false), records);
  checkRecordsToWrite(records, c.get("config").maxRecordBytes);

  // A missing bucket is reported per record with an overall 200, as in the reference.
  const items = records.map(({ ts, size, contentType, labels }) => ({ meta: { entry, ts, size, contentType, labels } }));
  const target = {
    bucket,
    stub: bucketStub(c.env, bucket),
    records: recordsBucket(c.env),
    ioTimeoutMs: c.get("config").ioTimeoutMs,
  };
  // A decoded body has no transport length to end it: bytes beyond the records are an error.
  const failures = await writeBatchBody(target, writeBody(c.req.raw.body, coding), items, { wholeBody: coding !== null });
  for (const { item, error } of failures) {
    c.header(...renderRecordErrorV1(item.meta.ts, error));
  }
  return c.body(null, 200);
});

// PATCH /api/v1/b/:bucket_name/:entry_name/batch
batchV1Routes.patch("/:bucket/:entry{.+}/batch", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const updates = parseBatchV1Update(c.req.raw.headers);
  await requireEntry(c, bucket, entry);
  const items = updates.map((update) => ({ entry, ts: update.ts, changes: labelChanges(update) }));
  const { outcomes } = unwrap(await bucketStub(c.env, bucket).updateLabelsMany(items));
  reportOutcomes(
    c,
    updates.map((update) => update.ts),
    outcomes,
  );
  return c.body(null, 200);
});

// DELETE /api/v1/b/:bucket_name/:entry_name/batch
batchV1Routes.delete("/:bucket/:entry{.+}/batch", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const timestamps = parseBatchV1Remove(c.req.raw.headers);
  if (isMetaEntry(entry)) {
    throw unprocessable(`Can't delete records from system entry '${entry}'; use label update with remove=true`);
  }
  await requireEntry(c, bucket, entry);
  const items = timestamps.map((ts) => ({ entry, ts }));
  const { outcomes } = unwrap(await bucketStub(c.env, bucket).removeMany(items));
  reportOutcomes(c, timestamps, outcomes);
  return c.body(null, 200);
});
