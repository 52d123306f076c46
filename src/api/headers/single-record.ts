/**
 * Codecs of the single-record API: the `ts` parameter, `x-reduct-label-*` headers,
 * the declared content length and the content type, with ReductStore's exact 422 messages.
 */
import { unprocessable } from "../../errors";
import { isHeaderToken } from "../../storage/label-rules";
import { DEFAULT_CONTENT_TYPE } from "../../storage/record-meta";
import {
  assertContentTypeLength,
  assertLabelCaps,
  EMPTY_LABEL_NAME,
  isVisibleAscii,
  type Labels,
  type LabelUpdate,
  parseSafeDecimal,
  toLabels,
  toLabelUpdate,
} from "./common";

export { DEFAULT_CONTENT_TYPE };

export const LABEL_HEADER_PREFIX = "x-reduct-label-";
export const CONTENT_LENGTH_HEADER = "content-length";
export const REDUCT_CONTENT_LENGTH_HEADER = "x-reduct-content-length";

/**
 * Parses a timestamp parameter (µs): strict decimal ≤ 2^53 − 1 (timestamps are JS numbers here).
 * Missing → 422 `'<name>' parameter is required`; otherwise invalid → 422
 * `'<name>' must be an unix timestamp in microseconds`.
 */
export function parseTimestamp(text: string | null | undefined, name = "ts"): number {
  if (text === null || text === undefined) throw unprocessable(`'${name}' parameter is required`);
  const value = parseSafeDecimal(text);
  if (value === null) throw unprocessable(`'${name}' must be an unix timestamp in microseconds`);
  return value;
}

/**
 * Collects `x-reduct-label-<name>` headers. Values must be visible ASCII (422
 * `Label values for x-reduct-label-<name> must be valid UTF-8 strings`). Empty values are kept:
 * a write stores them (as ReductStore does) and gets the record caps; PATCH (`update`) reads them
 * as removals and gets the op caps.
 */
export function readLabelHeaders(headers: Headers, use: "write" | "update" = "write"): Labels {
  const labels = new Map<string, string>();
  for (const [header, value] of headers) {
    if (!header.startsWith(LABEL_HEADER_PREFIX)) continue;
    const name = header.slice(LABEL_HEADER_PREFIX.length);
    if (name === "") throw unprocessable(EMPTY_LABEL_NAME);
    if (!isVisibleAscii(value)) throw unprocessable(`Label values for ${header} must be valid UTF-8 strings`);
    labels.set(name, value);
  }
  if (use === "update") {
    assertLabelCaps(labels, "update");
    return toLabels(labels);
  }
  assertLabelCaps(labels);
  return toLabels(labels);
}

/**
 * `x-reduct-label-<name>` for a single-record response, or null when `name` cannot be part of a
 * header name. Writes refuse such names; only a record stored before that rule can hold one.
 */
export function labelHeaderName(name: string): string | null {
  return isHeaderToken(name) ? `${LABEL_HEADER_PREFIX}${name}` : null;
}

/** PATCH semantics: non-empty value = set, empty value = remove. */
export function labelUpdateFromHeaders(labels: Labels): LabelUpdate {
  return toLabelUpdate(Object.entries(labels));
}

/**
 * The declared body length: the first of `names` present (by default `Content-Length`, else
 * `x-reduct-content-length`), else null.
 * A present but non-decimal (or > 2^53 − 1) value → 422 `<header> header must be a number`.
 */
export function readOptionalContentLength(
  headers: Headers,
  names: readonly string[] = [CONTENT_LENGTH_HEADER, REDUCT_CONTENT_LENGTH_HEADER],
): number | null {
  for (const header of names) {
    const text = headers.get(header);
    if (text === null) continue;
    const value = parseSafeDecimal(text.trim());
    if (value === null) throw unprocessable(`${header} header must be a number`);
    return value;
  }
  return null;
}

/** As `readOptionalContentLength`, but neither header → 422 `content-length header is required`. */
export function readContentLength(headers: Headers): number {
  const value = readOptionalContentLength(headers);
  if (value === null) throw unprocessable("content-length header is required");
  return value;
}

/** A batch's declared length, if any, must equal the sum of its records' lengths. */
export function assertBatchContentLength(declared: number | null, records: readonly { size: number }[]): void {
  if (declared === null) return;
  const total = records.reduce((sum, record) => sum + record.size, 0);
  if (declared !== total) {
    throw unprocessable("content-length header does not match the sum of the content-lengths in the headers");
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const malformed = (reason: string) => unprocessable(`Malformed content-type header: ${reason}`);

/** Skips spaces from `pos`; returns the first non-space position. */
function skipSpaces(text: string, pos: number): number {
  while (pos < text.length && text[pos] === " ") pos++;
  return pos;
}

/** Parses `;`-separated `name=value` parameters (value a token or a quoted string) from `pos`. */
function checkParameters(text: string, pos: number): void {
  while (pos < text.length) {
    // text[pos] is ';'
    pos = skipSpaces(text, pos + 1);
    if (pos === text.length || text[pos] === ";") continue;
    const equals = text.indexOf("=", pos);
    if (equals < 0) throw malformed(`parameter '${text.slice(pos)}' has no value`);
    if (!TOKEN.test(text.slice(pos, equals))) throw malformed(`invalid parameter name '${text.slice(pos, equals)}'`);
    pos = equals + 1;
    if (text[pos] === '"') {
      pos++;
      while (pos < text.length && text[pos] !== '"') pos += text[pos] === "\\" ? 2 : 1;
      if (pos >= text.length) throw malformed("unterminated quoted parameter value");
      pos++;
    } else {
      const start = pos;
      while (pos < text.length && text[pos] !== ";" && text[pos] !== " ") pos++;
      if (!TOKEN.test(text.slice(start, pos))) throw malformed(`invalid parameter value '${text.slice(start, pos)}'`);
    }
    pos = skipSpaces(text, pos);
    if (pos < text.length && text[pos] !== ";") throw malformed(`unexpected '${text[pos]}' after a parameter`);
  }
}

/**
 * Validates a Content-Type (`type/subtype *(; name=value)`, RFC 9110 tokens) and returns it
 * trimmed but otherwise verbatim; absent or blank → `application/octet-stream`. Commas are
 * refused even inside quoted parameters: they would break batch header framing on reads.
 * Failures → 422 `Malformed content-type header: <reason>`.
 */
export function validateContentType(value: string | null | undefined): string {
  if (value === null || value === undefined) return DEFAULT_CONTENT_TYPE;
  const text = value.trim();
  if (text === "") return DEFAULT_CONTENT_TYPE;
  assertContentTypeLength(text);
  if (!isVisibleAscii(text)) throw malformed("only visible ASCII characters are allowed");
  if (text.includes(",")) throw malformed("',' is not allowed");
  const semicolon = text.indexOf(";");
  const essence = (semicolon < 0 ? text : text.slice(0, semicolon)).trimEnd();
  const slash = essence.indexOf("/");
  if (slash < 0) throw malformed(`missing '/' between type and subtype in '${essence}'`);
  if (!TOKEN.test(essence.slice(0, slash))) throw malformed(`invalid type '${essence.slice(0, slash)}'`);
  if (!TOKEN.test(essence.slice(slash + 1))) throw malformed(`invalid subtype '${essence.slice(slash + 1)}'`);
  if (semicolon >= 0) checkParameters(text, semicolon);
  return text;
}
