/**
 * Batch protocol v2, the multi-entry `/io` framing: `x-reduct-entries`, `x-reduct-start-ts`,
 * optional `x-reduct-labels`, and one delta-compressed `x-reduct-<IDX>-<DELTA>` header per record;
 * contents ordered by (entry index, timestamp). Parses the write, update and remove forms of a
 * request and renders a read response, with a helper to fit a batch into a header byte budget.
 */
import { unprocessable } from "../../errors";
import { DEFAULT_CONTENT_TYPE } from "../../storage/record-meta";
import {
  assertBatchHeaderBudget,
  assertContentTypeLength,
  assertLabelCaps,
  compareCodePoints,
  headerBytes,
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
import { decodeName, encodeName } from "./name-encoding";

export const V2_HEADER_PREFIX = "x-reduct-";
export const ENTRIES_HEADER = "x-reduct-entries";
export const START_TS_HEADER = "x-reduct-start-ts";
export const LABELS_HEADER = "x-reduct-labels";

const DIGITS = /^[0-9]*$/;
const STRICT_DIGITS = /^[0-9]+$/;

/** One record of a v2 batch (also the input of the v2 renderer). */
export interface BatchRecordV2 {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

/** Where a record sits in its batch: for `x-reduct-error-<entryIndex>-<delta>` headers. */
export interface BatchPosition {
  entryIndex: number;
  delta: number;
}

export type ParsedRecordV2 = BatchRecordV2 & BatchPosition;

export interface LabelUpdateV2 extends LabelUpdate, BatchPosition {
  entry: string;
  ts: number;
}

export interface RecordRefV2 extends BatchPosition {
  entry: string;
  ts: number;
}

export interface ParsedBatchV2<R> {
  /** Decoded entry names; position = entry index. */
  entries: string[];
  startTs: number;
  /** Records in (entry index, timestamp) order: the body order. */
  records: R[];
}

/** Decodes a comma-separated list of percent-encoded names. */
function decodeList(text: string, describe: (encoded: string, failure: "encoding" | "utf8") => string): string[] {
  return text.split(",").map((item) => {
    const encoded = item.trim();
    const decoded = decodeName(encoded);
    if (!decoded.ok) throw unprocessable(describe(encoded, decoded.failure));
    return decoded.name;
  });
}

/** `x-reduct-entries`: required, non-empty, no empty or repeated names. */
export function parseEntriesHeader(headers: Headers): string[] {
  const text = headers.get(ENTRIES_HEADER);
  if (text === null) throw unprocessable(`${ENTRIES_HEADER} header is required`);
  if (!isVisibleAscii(text)) throw unprocessable("Invalid entries header");
  if (text.trim() === "") throw unprocessable(`${ENTRIES_HEADER} header is required`);
  const entries = decodeList(text, (encoded, failure) =>
    failure === "encoding"
      ? `Invalid entry encoding in header name: '${encoded}'`
      : `Entry name is not valid UTF-8 in header '${encoded}'`,
  );
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry === "") throw unprocessable(`${ENTRIES_HEADER} header must not contain empty entry names`);
    if (seen.has(entry)) throw unprocessable(`${ENTRIES_HEADER} header must not contain an entry twice`);
    seen.add(entry);
  }
  return entries;
}

/** `x-reduct-start-ts`: required strict decimal ≤ 2^53 − 1. */
export function parseStartTsHeader(headers: Headers): number {
  const text = headers.get(START_TS_HEADER);
  if (text === null) throw unprocessable(`${START_TS_HEADER} header is required`);
  const value = parseSafeDecimal(text);
  if (value === null) throw unprocessable(`Invalid ${START_TS_HEADER} header`);
  return value;
}

/** `x-reduct-labels`: optional; present means numeric label keys are indexes into it. */
export function parseLabelsHeader(headers: Headers): string[] | null {
  const text = headers.get(LABELS_HEADER);
  if (text === null) return null;
  if (!isVisibleAscii(text)) throw unprocessable("Invalid labels header");
  if (text.trim() === "") throw unprocessable(`${LABELS_HEADER} header is empty`);
  const names = decodeList(text, (encoded) => `Invalid label encoding in header value: '${encoded}'`);
  if (names.includes("")) throw unprocessable(`${LABELS_HEADER} header must not contain empty label names`);
  return names;
}

interface RawRecordHeader extends BatchPosition {
  name: string;
  value: string;
}

/**
 * Record headers (`x-reduct-…-<digits>`) in (entry index, delta) order. As in the reference any
 * `x-reduct-` header whose last `-` segment is all digits is one, so `x-reduct-time-1` in a v2
 * request is an error, not ignored. Entry ranges are checked later, in this order.
 */
function collectRecordHeaders(headers: Headers, startTs: number): RawRecordHeader[] {
  const records: RawRecordHeader[] = [];
  const seen = new Set<string>();
  for (const [name, value] of headers) {
    if (!name.startsWith(V2_HEADER_PREFIX)) continue;
    const lastDash = name.lastIndexOf("-");
    if (!DIGITS.test(name.slice(lastDash + 1))) continue;
    if (lastDash < V2_HEADER_PREFIX.length) throw unprocessable(`Invalid batched header '${name}'`);
    const middle = name.slice(V2_HEADER_PREFIX.length, lastDash);
    if (!STRICT_DIGITS.test(middle)) throw unprocessable(`Invalid header '${name}': entry index must be a number`);
    const delta = parseSafeDecimal(name.slice(lastDash + 1));
    if (delta === null || startTs + delta > Number.MAX_SAFE_INTEGER) {
      throw unprocessable(`Invalid header '${name}': must be an unix timestamp in microseconds`);
    }
    // A huge index is out of range like any other: keep it as Infinity.
    const entryIndex = parseSafeDecimal(middle) ?? Number.POSITIVE_INFINITY;
    const key = `${entryIndex}-${delta}`;
    if (seen.has(key)) throw unprocessable(`Invalid header '${name}': another header names the same record`);
    seen.add(key);
    records.push({ name, value, entryIndex, delta });
  }
  return records.sort((a, b) => a.entryIndex - b.entryIndex || a.delta - b.delta);
}

interface BatchFrame {
  entries: string[];
  startTs: number;
  labelNames: string[] | null;
  raw: RawRecordHeader[];
}

/** The common headers then the record headers, each checked in the reference's order. */
function readFrame(headers: Headers): BatchFrame {
  assertBatchHeaderBudget(headers);
  const entries = parseEntriesHeader(headers);
  const startTs = parseStartTsHeader(headers);
  const labelNames = parseLabelsHeader(headers);
  return { entries, startTs, labelNames, raw: collectRecordHeaders(headers, startTs) };
}

function entryOf(frame: BatchFrame, record: RawRecordHeader): string {
  const entry = frame.entries[record.entryIndex];
  if (entry === undefined) throw unprocessable(`Invalid header '${record.name}': entry index out of range`);
  return entry;
}

/** A label key: an index into `x-reduct-labels` (digits, only when present) or a literal name. */
function resolveLabelName(key: string, labelNames: string[] | null): string {
  let name = key;
  if (labelNames !== null && STRICT_DIGITS.test(key)) {
    const resolved = labelNames[parseSafeDecimal(key) ?? labelNames.length];
    if (resolved === undefined) throw unprocessable(`Label index '${key}' is out of range`);
    name = resolved;
  }
  if (name.startsWith("@")) throw unprocessable(RESERVED_LABEL_NAME);
  return name;
}

interface V2Value {
  size: number;
  /** Null: keep the previous record's content type (or the default). */
  contentType: string | null;
  /** Null: no label part (keep previous labels); else ops in order, null value = remove. */
  ops: Array<[string, string | null]> | null;
}

/** Parses one v2 record value. `hasPrevious`: the entry already had a record. */
function parseV2Value(value: string, hasPrevious: boolean, labelNames: string[] | null): V2Value {
  if (!isVisibleAscii(value)) throw unprocessable(INVALID_BATCHED_HEADER);
  const comma = value.indexOf(",");
  const size = parseSafeDecimal((comma < 0 ? value : value.slice(0, comma)).trim());
  if (size === null) throw unprocessable(INVALID_BATCHED_HEADER);
  if (comma < 0) {
    if (!hasPrevious) throw unprocessable("Content-type and labels must be provided for the first record of an entry");
    return { size, contentType: null, ops: null };
  }
  const rest = value.slice(comma + 1);
  const labelsStart = rest.indexOf(",");
  const contentType = (labelsStart < 0 ? rest : rest.slice(0, labelsStart)).trim() || null;
  if (contentType !== null) assertContentTypeLength(contentType);
  if (labelsStart < 0) return { size, contentType, ops: null };
  const ops = scanLabelItems(rest.slice(labelsStart + 1), "reject").map(([key, labelValue]): [string, string | null] => [
    resolveLabelName(key, labelNames),
    labelValue === "" ? null : labelValue,
  ]);
  return { size, contentType, ops };
}

/**
 * `POST /io/{bucket}/write`: records with content type and labels resolved against the previous
 * record of the same entry. Every 422; label caps per record; 431 over the
 * header budget.
 */
export function parseBatchV2Write(headers: Headers): ParsedBatchV2<ParsedRecordV2> {
  const frame = readFrame(headers);
  const previous = new Map<number, { contentType: string; labels: Map<string, string> }>();
  const records = frame.raw.map((raw): ParsedRecordV2 => {
    const entry = entryOf(frame, raw);
    const prev = previous.get(raw.entryIndex);
    const parsed = parseV2Value(raw.value, prev !== undefined, frame.labelNames);
    const contentType = parsed.contentType ?? prev?.contentType ?? DEFAULT_CONTENT_TYPE;
    const labels = new Map(prev?.labels);
    for (const [name, value] of parsed.ops ?? []) {
      if (value === null) labels.delete(name);
      else labels.set(name, value);
    }
    assertLabelCaps(labels);
    previous.set(raw.entryIndex, { contentType, labels });
    const { entryIndex, delta } = raw;
    return { entry, entryIndex, delta, ts: frame.startTs + delta, size: parsed.size, contentType, labels: toLabels(labels) };
  });
  return { entries: frame.entries, startTs: frame.startTs, records };
}

/**
 * `PATCH /io/{bucket}/update`: LEN and CT are parsed but ignored; label ops accumulate
 * per entry (a record inherits the earlier records' ops, then applies its own).
 */
export function parseBatchV2Update(headers: Headers): ParsedBatchV2<LabelUpdateV2> {
  const frame = readFrame(headers);
  const accumulated = new Map<number, Map<string, string | null>>();
  const records = frame.raw.map((raw): LabelUpdateV2 => {
    const entry = entryOf(frame, raw);
    const prev = accumulated.get(raw.entryIndex);
    const parsed = parseV2Value(raw.value, prev !== undefined, frame.labelNames);
    const ops = new Map(prev);
    for (const [name, value] of parsed.ops ?? []) ops.set(name, value);
    assertLabelCaps(
      [...ops].map(([name, value]): [string, string] => [name, value ?? ""]),
      "update",
    );
    accumulated.set(raw.entryIndex, ops);
    const { entryIndex, delta } = raw;
    return { entry, entryIndex, delta, ts: frame.startTs + delta, ...toLabelUpdate(ops) };
  });
  return { entries: frame.entries, startTs: frame.startTs, records };
}

/** `DELETE /io/{bucket}/remove`: header names only; values are ignored. */
export function parseBatchV2Remove(headers: Headers): ParsedBatchV2<RecordRefV2> {
  const frame = readFrame(headers);
  const records = frame.raw.map(
    (raw): RecordRefV2 => ({
      entry: entryOf(frame, raw),
      entryIndex: raw.entryIndex,
      delta: raw.delta,
      ts: frame.startTs + raw.delta,
    }),
  );
  return { entries: frame.entries, startTs: frame.startTs, records };
}

/** `x-reduct-entries` value for a list of entry names (write/update/remove responses echo it). */
export const renderEntriesHeader = (entries: readonly string[]): string => entries.map(encodeName).join(",");

export interface RenderedBatchV2 {
  /** Entry names by index: ordered by their first record's timestamp, ties by name. */
  entries: string[];
  /** Smallest timestamp (0 for an empty batch). */
  startTs: number;
  /** `x-reduct-labels` names by index, in order of first use (empty: header omitted). */
  labelNames: string[];
  /** Header lines: entries, start-ts, labels (if any), then one line per record in body order. */
  headers: Array<[string, string]>;
  /** Records in body order: (entry index, timestamp). */
  records: ParsedRecordV2[];
}

interface EntryState {
  contentType: string;
  labels: Map<string, string>;
}

/** Label ops of one record against the entry's previous labels, as `(index, value)` pairs. */
function labelDelta(labels: Map<string, string>, previous: Map<string, string> | null, index: (name: string) => number): string {
  const names = [...new Set([...(previous?.keys() ?? []), ...labels.keys()])].sort(compareCodePoints);
  const ops: Array<[number, string]> = [];
  for (const name of names) {
    const value = labels.get(name);
    const before = previous?.get(name);
    if (value === before) continue;
    ops.push([index(name), value === undefined ? "" : quoteLabelValue(value)]);
  }
  return ops
    .sort((a, b) => a[0] - b[0])
    .map(([i, value]) => `${i}=${value}`)
    .join(",");
}

/**
 * Renders a read batch: `x-reduct-entries`, `x-reduct-start-ts`, `x-reduct-labels` and
 * one delta-compressed value per record. The first record of an entry carries its content
 * type and all labels; later ones the content type only when changed and only changed labels
 * (removed → `idx=`); keys are indexes; ops sorted by index; values with commas quoted.
 * A stored empty value renders as `idx=`, as ReductStore sends it (clients read it as absent).
 * Two records with the same (entry, ts) are a bug.
 */
export function renderBatchV2(input: readonly BatchRecordV2[]): RenderedBatchV2 {
  const firstTs = new Map<string, number>();
  for (const record of input) firstTs.set(record.entry, Math.min(record.ts, firstTs.get(record.entry) ?? record.ts));
  const entries = [...firstTs.keys()].sort((a, b) => firstTs.get(a)! - firstTs.get(b)! || compareCodePoints(a, b));
  const entryIndex = new Map(entries.map((entry, i) => [entry, i]));
  const startTs = input.length === 0 ? 0 : Math.min(...firstTs.values());
  const ordered = input
    .map((record) => ({ ...record, entryIndex: entryIndex.get(record.entry)!, delta: record.ts - startTs }))
    .sort((a, b) => a.entryIndex - b.entryIndex || a.ts - b.ts);

  const labelNames: string[] = [];
  const labelIndex = new Map<string, number>();
  const indexOf = (name: string): number => {
    let i = labelIndex.get(name);
    if (i === undefined) {
      i = labelNames.push(name) - 1;
      labelIndex.set(name, i);
    }
    return i;
  };

  const states = new Map<number, EntryState>();
  const recordLines: Array<[string, string]> = [];
  let last: ParsedRecordV2 | undefined;
  for (const record of ordered) {
    if (last && last.entryIndex === record.entryIndex && last.ts === record.ts) {
      throw new Error(`renderBatchV2: two records of '${record.entry}' at ${record.ts}`);
    }
    last = record;
    const labels = new Map(Object.entries(record.labels));
    const state = states.get(record.entryIndex);
    const contentType = state === undefined || state.contentType !== record.contentType ? record.contentType : "";
    const delta = labelDelta(labels, state?.labels ?? null, indexOf);
    let value = `${record.size}`;
    if (delta !== "") value += `,${contentType},${delta}`;
    else if (state === undefined || contentType !== "") value += `,${contentType}`;
    recordLines.push([`${V2_HEADER_PREFIX}${record.entryIndex}-${record.delta}`, value]);
    states.set(record.entryIndex, { contentType: record.contentType, labels });
  }

  const headers: Array<[string, string]> = [
    [ENTRIES_HEADER, renderEntriesHeader(entries)],
    [START_TS_HEADER, `${startTs}`],
  ];
  if (labelNames.length > 0) headers.push([LABELS_HEADER, labelNames.map(encodeName).join(",")]);
  headers.push(...recordLines);
  return { entries, startTs, labelNames, headers, records: ordered };
}

/**
 * Renders the longest prefix of `records` (in the caller's order, e.g. query order) whose header
 * lines fit in `maxHeaderBytes`, but always at least one record so a reader makes progress.
 * Rendering is recomputed per probe (binary search), since adding a record can renumber entries.
 */
export function renderBatchV2WithinBudget(records: readonly BatchRecordV2[], maxHeaderBytes: number): RenderedBatchV2 {
  const whole = renderBatchV2(records);
  if (records.length <= 1 || headerBytes(whole.headers) <= maxHeaderBytes) return whole;
  let fits = 1;
  let tooBig = records.length;
  while (tooBig - fits > 1) {
    const probe = Math.floor((fits + tooBig) / 2);
    if (headerBytes(renderBatchV2(records.slice(0, probe)).headers) <= maxHeaderBytes) fits = probe;
    else tooBig = probe;
  }
  return renderBatchV2(records.slice(0, fits));
}
