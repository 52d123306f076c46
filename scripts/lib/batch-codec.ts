// The ReductStore batch protocol as the harness speaks it, both directions: label lists, v1 batch
// writes and reads (`x-reduct-time-<ts>`), v2 batch writes and reads (`/io/:bucket/…`, entry
// indexes, delta timestamps, label-name indexes) and the per-record error headers of each.
// Shared by the crash loop, the soak, the export tool and the bench.
import type { IncomingHttpHeaders } from "node:http";
import { sha256Hex } from "./prng.ts";

export type Labels = Record<string, string>;

/** A record to write: its entry (v2 only), timestamp (µs), content type, labels and bytes. */
export interface OutgoingRecord {
  entry?: string;
  ts: number;
  contentType: string;
  labels: Labels;
  data: Buffer;
}

/** A record as a batched read announced it, with the digest of the bytes that came. */
export interface ReadRecord {
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
  sha256: string;
  truncated: boolean;
}

/** A record of a v2 batch write, which names its entry. */
export type OutgoingV2Record = OutgoingRecord & { entry: string };

export interface EncodedBatch {
  headers: Record<string, string>;
  body: Buffer;
}

/** `k=v`, quoted when the value contains a comma (as the reference writers do). */
const renderLabel = (key: string, value: string): string =>
  String(value).includes(",") ? `${key}="${value}"` : `${key}=${value}`;

/**
 * Parses `k=v,k2="a,b",...` (a batched record header's label list): values starting with `"` run to the next `"`; keys and
 * values are trimmed; a fragment without `=` is ignored. Throws on an unterminated quote.
 */
export function parseLabelList(text: string): Labels {
  const labels: Labels = {};
  let pos = 0;
  while (pos < text.length) {
    const eq = text.indexOf("=", pos);
    const comma = text.indexOf(",", pos);
    if (eq < 0) break;
    if (comma >= 0 && comma < eq) {
      pos = comma + 1; // a fragment without '='
      continue;
    }
    const key = text.slice(pos, eq).trim();
    let p = eq + 1;
    while (text[p] === " ") p++;
    let value: string;
    if (text[p] === '"') {
      const close = text.indexOf('"', p + 1);
      if (close < 0) throw new Error(`unterminated quote in '${text}'`);
      value = text.slice(p + 1, close);
      const next = text.indexOf(",", close + 1);
      pos = next < 0 ? text.length : next + 1;
    } else {
      const next = text.indexOf(",", p);
      value = text.slice(p, next < 0 ? text.length : next).trim();
      pos = next < 0 ? text.length : next + 1;
    }
    labels[key] = value;
  }
  return labels;
}

/** A v1 batched record header `<LEN>,<CT>[,labels]` → { size, contentType, labels }. */
export function parseV1RecordHeader(value: string): { size: number; contentType: string; labels: Labels } {
  const first = value.indexOf(",");
  if (first < 0) throw new Error(`invalid batched header '${value}'`);
  const size = Number(value.slice(0, first).trim());
  const rest = value.slice(first + 1);
  const second = rest.indexOf(",");
  const contentType = (second < 0 ? rest : rest.slice(0, second)).trim() || "application/octet-stream";
  const labels = second < 0 ? {} : parseLabelList(rest.slice(second + 1));
  return { size, contentType, labels };
}

/** Headers and body of a v1 batch write (`POST /b/:bucket/:entry/batch`) of `records` ({ ts, contentType, labels, data }). */
export function renderV1Batch(records: readonly OutgoingRecord[]): EncodedBatch {
  const sorted = [...records].sort((a, b) => a.ts - b.ts);
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  for (const record of sorted) {
    const labels = Object.entries(record.labels).map(([k, v]) => `,${renderLabel(k, v)}`);
    headers[`x-reduct-time-${record.ts}`] = `${record.data.length},${record.contentType}${labels.join("")}`;
  }
  return { headers, body: Buffer.concat(sorted.map((record) => record.data)) };
}

/**
 * Parses a v1 batched read answer (`x-reduct-time-<ts>` headers): its records in timestamp order,
 * the body sliced in that order; `extraBytes` is what the body has beyond (negative: short of) the
 * announced sizes.
 */
export function parseV1Read(headers: IncomingHttpHeaders, body: Buffer): { records: ReadRecord[]; extraBytes: number } {
  const heads: { ts: number; size: number; contentType: string; labels: Labels }[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-time-(\d+)$/.exec(name);
    if (match) heads.push({ ts: Number(match[1]), ...parseV1RecordHeader(String(value)) });
  }
  heads.sort((a, b) => a.ts - b.ts);
  let offset = 0;
  const records = heads.map((head): ReadRecord => {
    const data = body.subarray(offset, offset + head.size);
    offset += head.size;
    return { ...head, sha256: sha256Hex(data), truncated: data.length !== head.size };
  });
  return { records, extraBytes: body.length - offset };
}

/** Per-record errors of a v1 batch answer: Map ts → "status,message". */
export function v1BatchErrors(headers: IncomingHttpHeaders): Map<number, string> {
  const errors = new Map<number, string>();
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-error-(\d+)$/.exec(name);
    if (match) errors.set(Number(match[1]), String(value));
  }
  return errors;
}

// HTTP token characters but `%`: a literal `%` could not be decoded back (as the server encodes).
const KEPT_CHAR = /[A-Za-z0-9!#$&'*+\-.^_`|~]/;

/** Entry and label name encoding of `x-reduct-entries`/`x-reduct-labels`: token characters but `%` kept, other bytes %XX. */
export function encodeEntryName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const char = String.fromCharCode(byte);
    out += byte < 128 && KEPT_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function decodeEntryName(text: string): string {
  return decodeURIComponent(text.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"));
}

/**
 * Headers and body of a v2 batch write (`POST /io/:bucket/write`) of `records` ({ entry, ts, contentType, labels,
 * data }). Entry indexes follow the sorted entry names; the body is in (entry index, ts) order;
 * each entry's first record carries its type and all labels, later ones only the changes (delta).
 * With `labelIndexes`, label names are published in `x-reduct-labels` and referenced by index.
 */
export function renderV2Batch(
  records: readonly OutgoingV2Record[],
  { labelIndexes = false }: { labelIndexes?: boolean } = {},
): EncodedBatch & { entries: string[]; startTs: number } {
  const entries = [...new Set(records.map((record) => record.entry))].sort();
  const startTs = Math.min(...records.map((record) => record.ts));
  const labelNames: string[] = [];
  const keyOf = (name: string): string => {
    if (!labelIndexes) return name;
    let index = labelNames.indexOf(name);
    if (index < 0) index = labelNames.push(name) - 1;
    return String(index);
  };
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "x-reduct-entries": entries.map(encodeEntryName).join(","),
    "x-reduct-start-ts": String(startTs),
  };
  const ordered: OutgoingRecord[] = [];
  entries.forEach((entry, index) => {
    const own = records.filter((record) => record.entry === entry).sort((a, b) => a.ts - b.ts);
    let prev: Pick<OutgoingRecord, "contentType" | "labels"> = { contentType: "application/octet-stream", labels: {} };
    own.forEach((record, i) => {
      const ops: string[] = [];
      for (const [k, v] of Object.entries(record.labels).sort()) if (prev.labels[k] !== v) ops.push(renderLabel(keyOf(k), v));
      for (const k of Object.keys(prev.labels).sort()) if (!(k in record.labels)) ops.push(`${keyOf(k)}=`);
      let value: string;
      if (i === 0) value = `${record.data.length},${record.contentType}${ops.length ? `,${ops.join(",")}` : ""}`;
      else if (ops.length === 0 && record.contentType === prev.contentType) value = `${record.data.length}`;
      else {
        const ct = record.contentType === prev.contentType ? "" : record.contentType;
        value = `${record.data.length},${ct}${ops.length ? `,${ops.join(",")}` : ""}`;
      }
      headers[`x-reduct-${index}-${record.ts - startTs}`] = value;
      ordered.push(record);
      prev = record;
    });
  });
  if (labelIndexes && labelNames.length > 0) headers["x-reduct-labels"] = labelNames.map(encodeEntryName).join(",");
  return { headers, body: Buffer.concat(ordered.map((record) => record.data)), entries, startTs };
}

/** Per-record errors of a v2 write answer: Map "entry\u0000ts" → "status,message". */
export function v2BatchErrors(headers: IncomingHttpHeaders, entries: readonly string[], startTs: number): Map<string, string> {
  const errors = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-error-(\d+)-(\d+)$/.exec(name);
    if (match) errors.set(`${entries[Number(match[1])]}\u0000${startTs + Number(match[2])}`, String(value));
  }
  return errors;
}

/**
 * Parses a v2 read answer (`GET /io/:bucket/read`): Map entry → [{ ts, size, contentType, labels, sha256 }], the
 * body sliced in (entry index, ts) order.
 */
export function parseV2Read(
  headers: IncomingHttpHeaders,
  body: Buffer,
): { records: Map<string, ReadRecord[]>; bodyBytes: number; extraBytes: number } {
  const entriesHeader = String(headers["x-reduct-entries"] ?? "");
  const entries = entriesHeader === "" ? [] : entriesHeader.split(",").map(decodeEntryName);
  const startTs = Number(headers["x-reduct-start-ts"] ?? 0);
  const labelNames = headers["x-reduct-labels"] ? String(headers["x-reduct-labels"]).split(",").map(decodeEntryName) : undefined;
  const heads: { index: number; delta: number; value: string }[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-(\d+)-(\d+)$/.exec(name);
    if (match) heads.push({ index: Number(match[1]), delta: Number(match[2]), value: String(value) });
  }
  heads.sort((a, b) => a.index - b.index || a.delta - b.delta);
  const out = new Map<string, ReadRecord[]>();
  const prevByEntry = new Map<string, Pick<ReadRecord, "contentType" | "labels">>();
  let offset = 0;
  for (const head of heads) {
    const entry = entries[head.index];
    if (entry === undefined) throw new Error(`record header index ${head.index} beyond x-reduct-entries '${entriesHeader}'`);
    const prev = prevByEntry.get(entry) ?? { contentType: "application/octet-stream", labels: {} };
    const comma = head.value.indexOf(",");
    let size: number;
    let contentType = prev.contentType;
    const labels = { ...prev.labels };
    if (comma < 0) size = Number(head.value.trim());
    else {
      size = Number(head.value.slice(0, comma).trim());
      const rest = head.value.slice(comma + 1);
      const second = rest.indexOf(",");
      const ct = (second < 0 ? rest : rest.slice(0, second)).trim();
      if (ct) contentType = ct;
      if (second >= 0) {
        for (const [key, value] of Object.entries(parseLabelList(rest.slice(second + 1)))) {
          // An index beyond x-reduct-labels names the label "undefined", as it always has.
          const name = labelNames && /^\d+$/.test(key) ? String(labelNames[Number(key)]) : key;
          if (value === "") delete labels[name];
          else labels[name] = value;
        }
      }
    }
    const data = body.subarray(offset, offset + size);
    offset += size;
    const record: ReadRecord = {
      ts: startTs + head.delta,
      size,
      contentType,
      labels,
      sha256: sha256Hex(data),
      truncated: data.length !== size,
    };
    prevByEntry.set(entry, record);
    if (!out.has(entry)) out.set(entry, []);
    out.get(entry)?.push(record);
  }
  return { records: out, bodyBytes: offset, extraBytes: body.length - offset };
}
