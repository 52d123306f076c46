/**
 * Building a record response: the x-reduct-* headers and an exact Content-Length, also on HEAD
 * (reduct-js and reduct-py read the record size from it). The body comes from the same code as a
 * batch's (`batchBody`): sealed and large records by an R2 get, staged ones inline from the bucket
 * object. Every response that carries record bytes leaves through `recordBytesResponse`, so the
 * platform never compresses it.
 */

import { internal, unwrap } from "../errors";
import type { RecordView } from "../model/records";
import { recordsBucket } from "../storage/r2-binding";
import { batchBody, MissingBytesError } from "../storage/record-bodies";
import { bucketStub } from "./bucket-stub";
import type { AppContext } from "./context";
import { labelHeaderName } from "./headers/single-record";

/**
 * Keeps record bytes as stored, with their exact Content-Length. Cloudflare's edge compresses 200
 * responses of text, JSON, XML, SVG, JavaScript… types for clients that accept gzip/br/zstd, and
 * then drops Content-Length; `cache-control: no-transform` is what it honours to leave a response
 * as it is. The local runtime (wrangler dev) copies that compression but ignores no-transform: it
 * leaves a response alone only when it already names a coding other than gzip or br, so the
 * response says `content-encoding: identity` ("not encoded"), which clients treat as no coding.
 */
const UNTRANSFORMED_BODY_HEADERS: ReadonlyArray<[string, string]> = [
  ["cache-control", "no-transform"],
  ["content-encoding", "identity"],
];

/** A 200 carrying record bytes (or, for HEAD, only their headers), never re-encoded on the way. */
export function recordBytesResponse(body: BodyInit | null, headers: Headers | Array<[string, string]>): Response {
  if (headers instanceof Headers) {
    for (const [name, value] of UNTRANSFORMED_BODY_HEADERS) headers.set(name, value);
  } else {
    headers.push(...UNTRANSFORMED_BODY_HEADERS);
  }
  return new Response(body, { status: 200, headers });
}

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

export async function sendRecord(c: AppContext, bucket: string, entry: string, ts: number | null): Promise<Response> {
  const head = c.req.method === "HEAD";
  const stub = bucketStub(c.env, bucket);
  // One retry covers a record removed between the index lookup and the R2 get.
  for (let attempt = 0; attempt < 2; attempt++) {
    const { record, body } = unwrap(await stub.readRecord(entry, ts, !head));
    try {
      const content = await batchBody(recordsBucket(c.env), [{ size: body.kind === "none" ? 0 : record.size, body }]);
      return recordBytesResponse(content, recordHeaders(record));
    } catch (error) {
      if (!(error instanceof MissingBytesError)) throw error;
    }
  }
  throw internal(`Record of ${bucket}/${entry} is broken: its stored bytes are missing`);
}
