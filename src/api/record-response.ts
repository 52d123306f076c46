/**
 * Building a record response (§4.2, §4.3): the x-reduct-* headers and an exact Content-Length,
 * also on HEAD (reduct-js reads the record size from it). Sealed and large records are served
 * with a ranged R2 get; staged ones come inline from the bucket object.
 */

import type { BodyLocation, RecordView } from "../bucket/bucket-object";
import { internal, unwrap } from "../errors";
import { R2_TIMEOUT_MS, withTimeout } from "../storage/r2";
import { recordsBucket } from "../storage/r2-binding";
import { bucketStub } from "./bucket-stub";
import type { AppContext } from "./context";
import { labelHeaderName } from "./headers/single-record";

export function recordHeaders(record: RecordView): Headers {
  const headers = new Headers({
    "x-reduct-time": String(record.ts),
    "x-reduct-entry": record.entry,
    "content-type": record.contentType,
    "content-length": String(record.size),
    "content-disposition": "attachment",
  });
  for (const [name, value] of Object.entries(record.labels)) {
    // Batch writes may store label names that cannot be a header name; those are not sent here.
    const header = labelHeaderName(name);
    if (header !== null) headers.set(header, value);
  }
  return headers;
}

/** Opens the bytes of a record, or null when its R2 object vanished (evicted or deleted meanwhile). */
export async function openBody(records: R2Bucket, record: RecordView, body: BodyLocation): Promise<BodyInit | null | undefined> {
  switch (body.kind) {
    case "none":
      return null;
    case "inline":
      return body.bytes;
    case "r2": {
      const object = await withTimeout(
        records.get(body.key, { range: { offset: body.offset, length: record.size } }),
        R2_TIMEOUT_MS,
        "get",
      );
      return object ? object.body : undefined;
    }
  }
}

export async function sendRecord(c: AppContext, bucket: string, entry: string, ts: number | null): Promise<Response> {
  const head = c.req.method === "HEAD";
  const stub = bucketStub(c.env, bucket);
  // One retry covers a record removed between the index lookup and the R2 get.
  for (let attempt = 0; attempt < 2; attempt++) {
    const { record, body } = unwrap(await stub.readRecord(bucket, entry, ts, !head));
    const content = await openBody(recordsBucket(c.env), record, body);
    if (content === undefined) continue;
    return new Response(content, { status: 200, headers: recordHeaders(record) });
  }
  throw internal(`Record of ${bucket}/${entry} is broken: its stored bytes are missing`);
}
