/**
 * Batch protocol v1: one `x-reduct-time-<TS>: <LEN>,<CT>[,k=v…]` header per record of one
 * entry, contents concatenated in ascending timestamp order. Parses the write, label-update and
 * remove forms of a request and renders the header values of a read response.
 */
import { unprocessable } from "../../errors";
import { DEFAULT_CONTENT_TYPE } from "../../storage/record-meta";
import {
  assertBatchHeaderBudget,
  assertContentTypeLength,
  assertLabelCaps,
  compareCodePoints,
  INVALID_BATCHED_HEADER,
  isVisibleAscii,
  type Labels,
  type LabelUpdate,
  parseSafeDecimal,
  quoteLabelValue,
  RESERVED_LABEL_NAME,
  scanLabelItems,
  toLabels,
  toLabelUpdate,
} from "./common";

export const V1_TIME_HEADER_PREFIX = "x-reduct-time-";

/** One record of a v1 batch (also the input of the v1 renderer). */
export interface BatchRecordV1 {
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

export interface LabelUpdateV1 extends LabelUpdate {
  ts: number;
}

interface V1Value {
  size: number;
  contentType: string;
  /** Label items in header order; a value may be empty. */
  items: Array<[string, string]>;
}

/** Record headers of a request, sorted by timestamp; names are all checked before any value. */
function collectRecordHeaders(headers: Headers): Array<{ ts: number; value: string }> {
  assertBatchHeaderBudget(headers);
  const records: Array<{ ts: number; value: string }> = [];
  const seen = new Set<number>();
  for (const [name, value] of headers) {
    if (!name.startsWith(V1_TIME_HEADER_PREFIX)) continue;
    const ts = parseSafeDecimal(name.slice(V1_TIME_HEADER_PREFIX.length));
    if (ts === null) throw unprocessable(`Invalid header '${name}': must be an unix timestamp in microseconds`);
    if (seen.has(ts)) throw unprocessable(`Invalid header '${name}': timestamp ${ts} appears twice`);
    seen.add(ts);
    records.push({ ts, value });
  }
  return records.sort((a, b) => a.ts - b.ts);
}

/**
 * Parses one v1 header value: the comma after LEN is mandatory (`Invalid batched
 * header`), LEN is a strict decimal (`Invalid content length`), an empty content type is the
 * default, items without `=` are ignored, `@` names are reserved.
 */
export function parseV1Value(value: string): V1Value {
  if (!isVisibleAscii(value)) throw unprocessable(INVALID_BATCHED_HEADER);
  const comma = value.indexOf(",");
  if (comma < 0) throw unprocessable(INVALID_BATCHED_HEADER);
  const size = parseSafeDecimal(value.slice(0, comma).trim());
  if (size === null) throw unprocessable("Invalid content length");
  const rest = value.slice(comma + 1);
  const labelsStart = rest.indexOf(",");
  const contentType = (labelsStart < 0 ? rest : rest.slice(0, labelsStart)).trim() || DEFAULT_CONTENT_TYPE;
  assertContentTypeLength(contentType);
  const items = labelsStart < 0 ? [] : scanLabelItems(rest.slice(labelsStart + 1), "ignore");
  for (const [name] of items) if (name.startsWith("@")) throw unprocessable(RESERVED_LABEL_NAME);
  return { size, contentType, items };
}

/**
 * `POST …/batch`: the records in ascending timestamp order. Labels with an empty value are stored,
 * as ReductStore does (only updates read an empty value as "remove"). Label caps apply per record.
 */
export function parseBatchV1Write(headers: Headers): BatchRecordV1[] {
  return collectRecordHeaders(headers).map(({ ts, value }) => {
    const { size, contentType, items } = parseV1Value(value);
    const labels = new Map<string, string>();
    for (const [name, labelValue] of items) labels.set(name, labelValue);
    assertLabelCaps(labels);
    return { ts, size, contentType, labels: toLabels(labels) };
  });
}

/** `PATCH …/batch`: per timestamp, labels to set and (empty value) to remove. */
export function parseBatchV1Update(headers: Headers): LabelUpdateV1[] {
  return collectRecordHeaders(headers).map(({ ts, value }) => {
    const ops = new Map<string, string>();
    for (const [name, labelValue] of parseV1Value(value).items) ops.set(name, labelValue);
    assertLabelCaps(ops, "update");
    return { ts, ...toLabelUpdate(ops) };
  });
}

/** `DELETE …/batch`: only the header names matter; timestamps ascending. */
export function parseBatchV1Remove(headers: Headers): number[] {
  return collectRecordHeaders(headers).map(({ ts }) => ts);
}

/**
 * A v1 response header value: `<LEN>,<CT>` then labels `k=v` / `k="v"` (quoted iff the value has a
 * comma) sorted as rendered strings; an empty value renders as `k=`.
 */
export function renderV1Value(record: Pick<BatchRecordV1, "size" | "contentType" | "labels">): string {
  const labels = Object.entries(record.labels)
    .map(([name, value]) => `${name}=${quoteLabelValue(value)}`)
    .sort(compareCodePoints);
  return [`${record.size}`, record.contentType, ...labels].join(",");
}

/** The `x-reduct-time-<TS>` lines of a v1 read response, in ascending timestamp order. */
export function renderBatchV1(records: readonly BatchRecordV1[]): Array<[string, string]> {
  return [...records]
    .sort((a, b) => a.ts - b.ts)
    .map((record) => [`${V1_TIME_HEADER_PREFIX}${record.ts}`, renderV1Value(record)]);
}
