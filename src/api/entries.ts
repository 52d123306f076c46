/**
 * Entry / record API: write, read (GET/HEAD), label update and removal of single records,
 * entry removal and rename. Entry names may contain `/`, so routes capture the rest of the path and
 * the suffixes `/batch`, `/q` and `/rename` are matched first.
 */

import { Hono } from "hono";
import { requireRead, requireWrite } from "../auth/policy";
import { renameKindError } from "../bucket/bucket-store";
import { HttpError, payloadTooLarge, unwrap } from "../errors";
import { recordsBucket } from "../storage/r2-binding";
import { readJsonBody } from "./body";
import { declaredRecordLength, readContentCoding, writeBody } from "./body-encoding";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv } from "./context";
import { validateEntryName } from "./headers/entry-name";
import { parseTimestamp, readLabelHeaders, validateContentType } from "./headers/single-record";
import { readOneOfQuery } from "./queries";
import { sendRecord } from "./record-response";
import { writeSingleRecord } from "./record-write";
import { parseOr422, renameBody } from "./schemas";

export const entryRoutes = new Hono<AppEnv>();

/** Optional `ts` query parameter: absent → null. */
function optionalTs(c: AppContext): number | null {
  const text = c.req.query("ts");
  return text === undefined ? null : parseTimestamp(text, "ts");
}

function requiredTs(c: AppContext): number {
  const ts = optionalTs(c);
  if (ts === null) throw new HttpError(422, "'ts' parameter is required");
  return ts;
}

// PUT /api/v1/b/:bucket_name/:entry_name/rename
entryRoutes.put("/:bucket/:entry{.+}/rename", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const { new_name: newName } = parseOr422(renameBody, await readJsonBody(c.req.raw, undefined));
  validateEntryName(newName);
  const kindError = renameKindError(entry, newName);
  if (kindError) throw new HttpError(kindError.status, kindError.message);
  unwrap(await bucketStub(c.env, bucket).renameEntry(entry, newName));
  return c.body(null, 200);
});

// POST /api/v1/b/:bucket_name/:entry_name?ts=<µs>
entryRoutes.post("/:bucket/:entry{.+}", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const ts = requiredTs(c);
  validateEntryName(entry);
  const coding = readContentCoding(c.req.raw.headers);
  const size = declaredRecordLength(c.req.raw.headers, coding);
  const maxBytes = c.get("config").maxRecordBytes;
  if (size > maxBytes) throw payloadTooLarge(`Record of ${size} bytes is larger than the limit of ${maxBytes} bytes`);
  const meta = {
    entry,
    ts,
    size,
    contentType: validateContentType(c.req.header("content-type")),
    labels: readLabelHeaders(c.req.raw.headers),
  };
  const target = {
    bucket,
    stub: bucketStub(c.env, bucket),
    records: recordsBucket(c.env),
    ioTimeoutMs: c.get("config").ioTimeoutMs,
  };
  await writeSingleRecord(target, writeBody(c.req.raw.body, coding), meta);
  return c.body(null, 200);
});

// GET|HEAD /api/v1/b/:bucket_name/:entry_name[?ts=<µs> | ?q=<query id>] — neither: the latest record
entryRoutes.get("/:bucket/:entry{.+}", async (c) => {
  const { bucket, entry } = c.req.param();
  requireRead(c.get("caller"), bucket);
  const ts = optionalTs(c);
  const queryId = c.req.query("q");
  if (ts === null && queryId !== undefined) return readOneOfQuery(c, bucket, entry, queryId);
  return sendRecord(c, bucket, entry, ts);
});

// PATCH /api/v1/b/:bucket_name/:entry_name?ts=<µs>
entryRoutes.patch("/:bucket/:entry{.+}", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const ts = requiredTs(c);
  const changes = Object.entries(readLabelHeaders(c.req.raw.headers, "update"));
  unwrap(await bucketStub(c.env, bucket).updateRecordLabels(entry, ts, changes));
  return c.body(null, 200);
});

// DELETE /api/v1/b/:bucket_name/:entry_name[?ts=<µs>] — with any query parameter it removes a record.
entryRoutes.delete("/:bucket/:entry{.+}", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const stub = bucketStub(c.env, bucket);
  if (new URL(c.req.url).search === "") {
    unwrap(await stub.removeEntry(entry));
  } else {
    unwrap(await stub.removeRecord(entry, requiredTs(c)));
  }
  return c.body(null, 200);
});
