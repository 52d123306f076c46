/**
 * Primitives shared by the record and batch header codecs: strict decimal parsing bounded to what
 * a JS number holds exactly, the visible-ASCII check for header values (Workers expose values as
 * ByteStrings, one char per byte), label caps, and the `key=value` list scanner of both batch
 * protocols. Pure: no I/O, failures are our `HttpError`.
 */
import { headersTooLarge, unprocessable } from "../../errors";
import type { Labels } from "../../model/records";
import { labelViolation } from "../../storage/label-rules";
import { MAX_SAFE_U64 } from "../schemas";

export type { Labels };

/** Labels add and remove in one request: an empty value (PATCH, batch updates) means remove. */
export interface LabelUpdate {
  set: Labels;
  /** Names to remove, sorted. */
  remove: string[];
}

export {
  EMPTY_LABEL_NAME,
  LABEL_HEADER_OVERHEAD_BYTES,
  MAX_LABEL_NAME_BYTES,
  MAX_LABEL_TOTAL_BYTES,
  MAX_LABEL_VALUE_BYTES,
  MAX_LABELS_PER_RECORD,
} from "../../storage/label-rules";
/** Header bytes one batch request may carry (hyper's buffer in the reference); beyond: 431. */
export const MAX_BATCH_HEADER_BYTES = 512_000;
/** Every read sends a record's content type as a header; this keeps it inside clients' header limits. */
export const MAX_CONTENT_TYPE_LENGTH = 1024;

/** 422 when a content type is longer than `MAX_CONTENT_TYPE_LENGTH`. */
export function assertContentTypeLength(contentType: string): void {
  if (contentType.length > MAX_CONTENT_TYPE_LENGTH) {
    throw unprocessable(`Malformed content-type header: at most ${MAX_CONTENT_TYPE_LENGTH} characters are allowed`);
  }
}

/** `name: value\r\n` adds ": " and CRLF to each header line. */
export const HEADER_LINE_OVERHEAD_BYTES = 4;

export const INVALID_BATCHED_HEADER = "Invalid batched header";
export const RESERVED_LABEL_NAME = "Label names must not start with '@': reserved for computed labels";

const DECIMAL = /^[0-9]+$/;
const LEADING_ZEROS = /^0+(?=.)/;
/** 2^53 − 1 has 16 digits. */
const MAX_SAFE_DIGITS = 16;
const FIRST_VISIBLE_ASCII = 0x20;
const LAST_VISIBLE_ASCII = 0x7e;

const encoder = new TextEncoder();

export const utf8Length = (text: string): number => encoder.encode(text).length;

/** Strict unsigned decimal (digits only: no sign, space, fraction or exponent) ≤ 2^53 − 1, else null. */
export function parseSafeDecimal(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const digits = text.replace(LEADING_ZEROS, "");
  if (digits.length > MAX_SAFE_DIGITS) return null;
  const value = Number(digits);
  return value <= MAX_SAFE_U64 ? value : null;
}

/** True when every char is visible ASCII (0x20–0x7E): no control chars, no bytes ≥ 0x7F. */
export function isVisibleAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < FIRST_VISIBLE_ASCII || code > LAST_VISIBLE_ASCII) return false;
  }
  return true;
}

const isSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdfff;

/** Orders strings by Unicode code point (= UTF-8 byte order, as Rust compares strings). */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate starts a code point ≥ U+10000, above every BMP char.
    if (isSurrogate(x) !== isSurrogate(y)) return isSurrogate(x) ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Bytes the given header lines take on the wire (`name: value\r\n`; values are ByteStrings). */
export function headerBytes(headers: Iterable<readonly [string, string]>): number {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + HEADER_LINE_OVERHEAD_BYTES;
  return total;
}

/** 431 when a batch request's headers exceed `MAX_BATCH_HEADER_BYTES`. */
export function assertBatchHeaderBudget(headers: Headers): void {
  if (headerBytes(headers) > MAX_BATCH_HEADER_BYTES) {
    throw headersTooLarge(`Batched headers must be at most ${MAX_BATCH_HEADER_BYTES} bytes in total`);
  }
}

/**
 * 422 unless the labels can be stored and read back on every path (`labelViolation`). `update`:
 * the pairs are label ops, an empty value removes.
 */
export function assertLabelCaps(labels: Iterable<readonly [string, string]>, kind: "labels" | "update" = "labels"): void {
  const problem = labelViolation(labels, kind);
  if (problem !== null) throw unprocessable(problem);
}

/** Builds a `Labels` object; `Object.fromEntries` keeps names like `__proto__` as own data. */
export const toLabels = (map: ReadonlyMap<string, string>): Labels => Object.fromEntries(map);

/** Splits labels into sets and removals: an empty value means remove. */
export function toLabelUpdate(ops: Iterable<readonly [string, string | null]>): LabelUpdate {
  const set = new Map<string, string>();
  const remove: string[] = [];
  for (const [name, value] of ops) {
    if (value === null || value === "") remove.push(name);
    else set.set(name, value);
  }
  remove.sort(compareCodePoints);
  return { set: toLabels(set), remove };
}

/**
 * Scans the label part of a batch header value: `KEY=VALUE` items separated by commas, a value
 * starting with `"` runs to the next `"` (commas allowed inside, no escapes). Keys and values are
 * trimmed; empty items are skipped. Items without `=` are ignored (v1) or rejected (v2), as in the
 * reference. Anything but a comma after a closing quote, an unterminated quote, or an empty key is
 * `Invalid batched header`. Returns raw keys in order; values may be empty (= remove).
 */
export function scanLabelItems(text: string, itemsWithoutEquals: "ignore" | "reject"): Array<[string, string]> {
  const items: Array<[string, string]> = [];
  const length = text.length;
  let pos = 0;
  while (pos < length) {
    let end = pos;
    while (end < length && text[end] !== "=" && text[end] !== ",") end++;
    if (end === length || text[end] === ",") {
      if (itemsWithoutEquals === "reject" && text.slice(pos, end).trim() !== "") throw unprocessable(INVALID_BATCHED_HEADER);
      pos = end + 1;
      continue;
    }
    const key = text.slice(pos, end).trim();
    if (key === "") throw unprocessable(INVALID_BATCHED_HEADER);
    let start = end + 1;
    while (start < length && text[start] === " ") start++;
    if (text[start] === '"') {
      const close = text.indexOf('"', start + 1);
      if (close < 0) throw unprocessable(INVALID_BATCHED_HEADER);
      items.push([key, text.slice(start + 1, close).trim()]);
      let next = close + 1;
      while (next < length && text[next] === " ") next++;
      if (next < length && text[next] !== ",") throw unprocessable(INVALID_BATCHED_HEADER);
      pos = next + 1;
    } else {
      const comma = text.indexOf(",", start);
      const stop = comma < 0 ? length : comma;
      items.push([key, text.slice(start, stop).trim()]);
      pos = stop + 1;
    }
  }
  return items;
}

/** Renders a label value for a batch header: quoted iff it contains a comma (as the clients do). */
export const quoteLabelValue = (value: string): string => (value.includes(",") ? `"${value}"` : value);
