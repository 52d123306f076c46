/**
 * Query links: a signed URL that serves one record of a query without a token. POST makes the
 * link (read access on the body's bucket); the anonymous GET/HEAD checks the signature, expiry and
 * the issuer's current read access, re-runs the query and sends the selected record, with single
 * byte ranges fetched from storage by range. Links carry their parameters in the clear, signed
 * (src/auth/query-links.ts): the query of a link is visible to whoever holds the link.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type LinkIssuer, linkIssuer } from "../auth/link-issuer";
import { requireRead } from "../auth/policy";
import { fromBase64Url, signLink, toBase64Url, verifyLink } from "../auth/query-links";
import type { BatchRecord } from "../bucket/query-engine";
import { loadLinkSecret } from "../d1/link-secret";
import { HttpError, internal, notFound, rangeNotSatisfiable, unprocessable, unwrap } from "../errors";
import { recordsBucket } from "../storage/r2-binding";
import { MissingBytesError, recordRangeBody } from "../storage/record-bodies";
import { readJsonBody } from "./body";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv } from "./context";
import { batchLimits, parseQueryEntry, type QueryEntry, toSpec } from "./query-request";
import { recordBytesResponse, recordHeaders } from "./record-response";
import { errorResponse } from "./respond";
import { parseOr422, u64 } from "./schemas";

/** Largest signed parameter text (bytes): it travels in the URL, which browsers and proxies cap. */
export const MAX_LINK_PARAMS_BYTES = 16 * 1024;
/** How long one GET may scan the query for its record before it gives up. */
export const LINK_SCAN_BUDGET_MS = 20_000;
/**
 * TTL of the query a GET runs. It is read to the selected record at once and then abandoned, so it
 * must free its slot of the bucket's open-query limit quickly: a viewer seeking through a record
 * sends many ranged GETs, each running the query again.
 */
const LINK_QUERY_TTL_S = 1;

const linkRequest = z.object({
  bucket: z.string(),
  entry: z.string(),
  record_entry: z.string().nullish(),
  record_timestamp: u64.nullish(),
  index: u64.nullish(),
  query: z.unknown(),
  // Whole unix seconds within the safe integer range: a float or 2^64 would round silently.
  expire_at: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  base_url: z.string().nullish(),
});

type Selector = { entry: string; ts: number } | { index: number };

/** What a link signs: everything a GET needs, nothing about where it is served from. */
interface LinkParams {
  bucket: string;
  entries: string[];
  /** null: the link names no record; a GET must then pick one with `e` and `ts`. */
  selector: Selector | null;
  query: QueryEntry;
  expire_at: number;
}

function baseUrlOf(c: AppContext, given: string | null | undefined): string {
  if (given === null || given === undefined) return `${new URL(c.req.url).origin}${c.get("config").basePath}`;
  let parsed: URL;
  try {
    parsed = new URL(given);
  } catch {
    throw unprocessable("Invalid base_url provided for query link: relative URL without a base");
  }
  if (parsed.host === "") throw unprocessable("Invalid base_url provided for query link: missing host");
  return given.endsWith("/") ? given : `${given}/`;
}

export const linkRoutes = new Hono<AppEnv>();

// POST /api/v1/links/:file_name
linkRoutes.post("/:file_name", async (c) => {
  const fileName = c.req.param("file_name");
  const body = parseOr422(linkRequest, await readJsonBody(c.req.raw, undefined));
  const caller = c.get("caller");
  requireRead(caller, body.bucket);
  const query = parseQueryEntry(body.query);
  if (query.query_type !== "QUERY") throw unprocessable("Only 'Query' type is supported for query links");
  const base = baseUrlOf(c, body.base_url);

  let selector: LinkParams["selector"] = null;
  if (body.record_entry != null || body.record_timestamp != null) {
    if (body.record_entry == null || body.record_timestamp == null) {
      throw unprocessable("Both record_entry and record_timestamp must be set to select a record");
    }
    selector = { entry: body.record_entry, ts: body.record_timestamp };
  } else if (body.index != null) {
    selector = { index: body.index };
  }
  // A link that names no record is still made, as ReductStore does: its GET needs `e` and `ts`.
  const entries = query.entries && query.entries.length > 0 ? query.entries : [body.entry];
  const params: LinkParams = { bucket: body.bucket, entries, selector, query, expire_at: body.expire_at };
  const encoded = toBase64Url(new TextEncoder().encode(JSON.stringify(params)));
  if (encoded.length > MAX_LINK_PARAMS_BYTES) {
    throw unprocessable(`Query is too large for a link: ${encoded.length} bytes encoded, at most ${MAX_LINK_PARAMS_BYTES}`);
  }
  const issuer = await linkIssuer(c.get("config"), c.env.DB, caller.token.name);
  const signature = await signLink(await loadLinkSecret(c.env.DB), issuer.token.name, issuer.secret, encoded);
  const search = new URLSearchParams({ p: encoded, i: issuer.token.name, s: signature });
  return c.json({ link: `${base}api/v1/links/${encodeURIComponent(fileName)}?${search}` });
});

// GET|HEAD /api/v1/links/:file_name?p=…&i=…&s=… — anonymous
linkRoutes.get("/:file_name", async (c) => {
  const fileName = c.req.param("file_name");
  const { params, issuer } = await verifiedLink(c);
  const selector = selectorOf(c, params.selector);
  requireRead({ token: issuer.token }, params.bucket);
  const found = await findLinkedRecord(c, params, selector);
  return sendLinkedRecord(c, params.bucket, found, fileName);
});

const FORGED_MESSAGE = "Invalid query link: the signature does not match";

/** The link's parameters once its issuer still exists and the signature verifies under its key. */
async function verifiedLink(c: AppContext): Promise<{ params: LinkParams; issuer: LinkIssuer }> {
  const required = (name: "p" | "i" | "s"): string => {
    const value = c.req.query(name);
    if (value === undefined) throw unprocessable(`Missing '${name}' parameter`);
    return value;
  };
  const encoded = required("p");
  const issuerName = required("i");
  const signature = required("s");
  const issuer = await linkIssuer(c.get("config"), c.env.DB, issuerName);
  const valid = await verifyLink(await loadLinkSecret(c.env.DB), issuer.token.name, issuer.secret, encoded, signature);
  const bytes = valid ? fromBase64Url(encoded) : undefined;
  if (!bytes) throw unprocessable(FORGED_MESSAGE);
  // Signed by this server, so the shape is ours; parsing still never trusts it blindly.
  let params: LinkParams;
  try {
    params = JSON.parse(new TextDecoder().decode(bytes)) as LinkParams;
  } catch {
    throw unprocessable(FORGED_MESSAGE);
  }
  if (typeof params.expire_at !== "number" || params.expire_at * 1000 < Date.now()) {
    throw unprocessable("Query link has expired");
  }
  return { params, issuer };
}

/** `ts` as a u64 the way ReductStore parses it, with its reasons (and our safe-integer bound). */
function parseTimestampParam(ts: string): number {
  let reason: string | null = null;
  if (ts === "") reason = "cannot parse integer from empty string";
  else if (!/^\+?\d+$/.test(ts)) reason = "invalid digit found in string";
  else if (!Number.isSafeInteger(Number(ts))) reason = "number too large to fit in target type";
  if (reason !== null) throw unprocessable(`Invalid 'ts' parameter: ${reason}`);
  return Number(ts);
}

/**
 * The record a GET serves: `e` and `ts` in the URL pick one of the query's records (unsigned, as in
 * ReductStore: they choose only among what the signed query selects), else the link's own.
 */
function selectorOf(c: AppContext, signed: Selector | null): Selector {
  const entry = c.req.query("e");
  const ts = c.req.query("ts");
  if (entry !== undefined && ts !== undefined) {
    return { entry, ts: parseTimestampParam(ts) };
  }
  if (entry !== undefined || ts !== undefined) throw unprocessable("Both 'e' and 'ts' parameters must be provided together");
  if (signed === null) {
    throw unprocessable("Both 'record_entry' and 'record_timestamp' must be provided in payload or URL parameters");
  }
  return signed;
}

function matches(record: BatchRecord, selector: Selector, position: number): boolean {
  return "index" in selector ? position === selector.index : record.entry === selector.entry && record.ts === selector.ts;
}

/** Runs the link's query (metadata only) until the selected record passes by. */
async function findLinkedRecord(c: AppContext, params: LinkParams, selector: Selector): Promise<BatchRecord> {
  const stub = bucketStub(c.env, params.bucket);
  // The link's own ttl is never used, so it is not checked either: a ttl above this server's
  // limit must not make every GET of the link fail.
  const query = { ...params.query, ttl: null, continuous: false };
  const spec = { ...toSpec(query, "multi", params.entries), ttlSeconds: LINK_QUERY_TTL_S };
  const { id } = unwrap(await stub.createQuery(spec));
  const limits = batchLimits(c.get("config"), false);
  const deadline = Date.now() + LINK_SCAN_BUDGET_MS;
  let position = 0;
  while (Date.now() < deadline) {
    const { batch, commit } = unwrap(await stub.readQuery(id, { kind: "multi" }, limits, false));
    for (const record of batch.records) {
      if (matches(record, selector, position)) return record;
      position += 1;
    }
    if (batch.last) break;
    if (commit) unwrap(await stub.commitQuery(commit));
  }
  if (Date.now() >= deadline) throw unprocessable("Query link took too long to find its record: narrow the query");
  throw notFound(
    "index" in selector ? "Record number out of range" : `Record ${selector.entry}/${selector.ts} not found in query result`,
  );
}

/** A single `bytes=` range resolved against `size`; null: serve the whole record. */
export type ByteRange = { start: number; end: number } | null;

/**
 * Parses a Range header for a record of `size` bytes. Malformed values and multiple ranges are
 * ignored (the whole record is sent, as HTTP allows); a well-formed range outside the record → 416.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return null;
  // Range units compare case-insensitively, and whitespace may surround the range (RFC 9110 14.1).
  const match = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)$/i.exec(header.trim());
  if (!match) return null;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return null;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw rangeNotSatisfiable(`Range ${header} is not satisfiable for ${size} bytes`);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return null;
  if (start >= size) throw rangeNotSatisfiable(`Range ${header} is not satisfiable for ${size} bytes`);
  return { start, end };
}

/** RFC 8187's attr-char: the only bytes an ext-value carries unencoded. */
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;

/** UTF-8 percent-encoding of everything but attr-char (a lone surrogate becomes U+FFFD). */
function extValue(text: string): string {
  let encoded = "";
  for (const byte of new TextEncoder().encode(text)) {
    const char = String.fromCharCode(byte);
    encoded += ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** `attachment` with the file name: plain ASCII in `filename`, the exact name in `filename*` when it differs. */
export function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/gu, "_");
  if (ascii === fileName) return `attachment; filename="${fileName}"`;
  return `attachment; filename="${ascii}"; filename*=UTF-8''${extValue(fileName)}`;
}

async function sendLinkedRecord(c: AppContext, bucket: string, found: BatchRecord, fileName: string): Promise<Response> {
  const head = c.req.method === "HEAD";
  const stub = bucketStub(c.env, bucket);
  // Usage counts the bytes sent (a range of the record, none for a 416), not the record's size.
  const { record, body } = unwrap(await stub.readRecord(found.entry, found.ts, !head, false));
  let range: ByteRange;
  try {
    range = parseByteRange(c.req.header("range"), record.size);
  } catch (error) {
    if (!(error instanceof HttpError) || error.status !== 416) throw error;
    // A 416 says how long the record is, so the client can ask again (RFC 9110 15.5.17).
    const refused = errorResponse(error, c.req.method);
    refused.headers.set("content-range", `bytes */${record.size}`);
    return refused;
  }
  const headers = recordHeaders(record);
  headers.set("content-disposition", contentDisposition(fileName));
  headers.set("accept-ranges", "bytes");
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : record.size;
  headers.set("content-length", String(length));
  if (range) headers.set("content-range", `bytes ${range.start}-${range.end}/${record.size}`);
  let content: BodyInit | null = null;
  if (!head) {
    try {
      content = await recordRangeBody(recordsBucket(c.env), body, start, length);
    } catch (error) {
      if (error instanceof MissingBytesError)
        throw internal(`Record of ${bucket}/${record.entry} is broken: its stored bytes are missing`);
      throw error;
    }
    await stub.countRead(record.entry, length);
  }
  const response = recordBytesResponse(content, headers);
  return range ? new Response(response.body, { status: 206, headers: response.headers }) : response;
}
