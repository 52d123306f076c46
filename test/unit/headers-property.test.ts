// Property tests: random header maps only ever produce our HttpError (422/431), and v1/v2 render →
// parse is the identity for random batches.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BatchRecordV1,
  type BatchRecordV2,
  compareCodePoints,
  decodeName,
  encodeName,
  MAX_LABEL_NAME_BYTES,
  MAX_LABELS_PER_RECORD,
  parseBatchV1Remove,
  parseBatchV1Update,
  parseBatchV1Write,
  parseBatchV2Remove,
  parseBatchV2Update,
  parseBatchV2Write,
  parseTimestamp,
  readContentLength,
  readLabelHeaders,
  renderBatchV1,
  renderBatchV2,
  validateContentType,
  validateEntryName,
} from "../../src/api/headers";
import { parseV1Value } from "../../src/api/headers/batch-v1";
import { HttpError } from "../../src/errors";

const NUM_RUNS = 400;

/** Runs `fn`; anything thrown must be an HttpError 422/431 with a message. Returns the result or undefined. */
function onlyHttpErrors<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    expect([422, 431]).toContain(error.status);
    expect(error.message.length).toBeGreaterThan(0);
    return undefined;
  }
}

const chars = (text: string) => fc.constantFrom(...text.split(""));
/** Header-name-safe (token) chars, with digits and dashes over-represented. */
const nameChar = chars("0123456789--abcxyz_.!~");
const nameText = (maxLength: number) => fc.string({ unit: nameChar, maxLength });
const digits = fc.oneof(
  fc.string({ unit: chars("0123456789"), minLength: 1, maxLength: 22 }),
  fc.nat({ max: 20 }).map(String),
  fc.constantFrom("9007199254740991", "9007199254740992", "18446744073709551616", "00", ""),
);

/** ASCII header values (incl. control chars and DEL, which Headers accepts), built from fragments. */
const FRAGMENTS = [
  "0",
  "1",
  "5",
  "10",
  "9007199254740991",
  "99999999999999999999",
  ",",
  ",",
  ",",
  "=",
  "=",
  '"',
  '"',
  " ",
  "%",
  "%2F",
  "%C3",
  "%ZZ",
  "%40",
  "@",
  "a",
  "b",
  "k",
  "text/plain",
  "a/b",
  ";q=1",
  "\x01",
  "\x7f",
  "\t",
  "-",
];
const value = fc.oneof(
  fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 14 }).map((parts) => parts.join("")),
  fc.string({
    unit: fc
      .integer({ min: 1, max: 0x7f })
      .filter((code) => code !== 0x0a && code !== 0x0d)
      .map((code) => String.fromCharCode(code)),
    maxLength: 30,
  }),
);

const headerName = fc.oneof(
  fc.constantFrom(
    "x-reduct-entries",
    "x-reduct-start-ts",
    "x-reduct-labels",
    "content-length",
    "x-reduct-content-length",
    "content-type",
    "x-reduct-",
    "x-reduct-time",
  ),
  digits.map((d) => `x-reduct-time-${d}`),
  nameText(4).map((s) => `x-reduct-time-${s}`),
  fc.tuple(digits, digits).map(([i, d]) => `x-reduct-${i}-${d}`),
  fc.tuple(nameText(5), digits).map(([i, d]) => `x-reduct-${i}-${d}`),
  nameText(6).map((s) => `x-reduct-label-${s}`),
  nameText(8).map((s) => `x-reduct-${s}`),
);

/** Record values shaped like the grammar (`LEN[,CT[,k=v…]]`) with awkward pieces mixed in. */
const smallDigits = fc.nat({ max: 30 }).map(String);
const weighted = <T>(...options: Array<[number, fc.Arbitrary<T>]>) =>
  fc.oneof(...options.map(([weight, arbitrary]) => ({ weight, arbitrary })));
const labelItem = fc
  .tuple(
    weighted([12, fc.constantFrom("a", "b", "0", "1", "x y")], [1, fc.constantFrom("2", "@c", "", " k ")], [1, nameText(3)]),
    weighted([12, fc.constantFrom("", "1", "v", '"a,b"', "x y")], [1, fc.constantFrom('"open', '"q"z', "=", "@")], [1, value]),
  )
  .map(([key, text]) => `${key}=${text}`);
const recordValue = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.oneof({ weight: 4, arbitrary: smallDigits }, { weight: 1, arbitrary: digits }),
        fc.option(fc.tuple(fc.constantFrom("", "text/plain", "a/b", " x/y "), fc.option(fc.array(labelItem, { maxLength: 4 })))),
      )
      .map(([len, rest]) => {
        if (rest === null) return len;
        const [ct, items] = rest;
        return items === null ? `${len},${ct}` : `${len},${ct},${items.join(",")}`;
      }),
  },
  { weight: 1, arbitrary: value },
);

/** Batch requests: mostly valid common headers, v1 and/or v2 record headers, some stray headers. */
const headerMap = fc
  .record({
    kind: weighted([2, fc.constant("v1")], [3, fc.constant("v2")], [1, fc.constant("mixed")]),
    entries: weighted<string | null>(
      [12, fc.constantFrom("a,b", "x-0,x-1,x%2Fy", "a%2F%24meta,b,c,d")],
      [1, fc.constantFrom("a,a", "", "a,,b", "%C3,a")],
      [1, value],
      [1, fc.constant(null)],
    ),
    startTs: weighted<string | null>([12, smallDigits], [1, digits], [1, value], [1, fc.constant(null)]),
    labels: weighted<string | null>([4, fc.constant(null)], [4, fc.constantFrom("a,b", "room,tags,%40x", "x%2Cy")], [1, value]),
    v1: fc.array(fc.tuple(weighted([8, smallDigits], [1, digits], [1, nameText(3)]), recordValue), { maxLength: 6 }),
    v2: fc.array(
      fc.tuple(
        weighted([16, fc.nat({ max: 1 }).map(String)], [1, fc.nat({ max: 5 }).map(String)], [1, digits], [1, nameText(3)]),
        weighted([8, smallDigits], [1, digits]),
        recordValue,
      ),
      { maxLength: 6 },
    ),
    others: fc.array(fc.tuple(headerName, value), { maxLength: 3 }),
  })
  .map(({ kind, entries, startTs, labels, v1, v2, others }) => {
    const headers = new Headers();
    if (kind !== "v2") for (const [ts, text] of v1) headers.set(`x-reduct-time-${ts}`, text);
    if (kind !== "v1") for (const [index, delta, text] of v2) headers.set(`x-reduct-${index}-${delta}`, text);
    if (kind === "mixed") for (const [name, text] of others) headers.append(name, text);
    if (entries !== null) headers.set("x-reduct-entries", entries);
    if (startTs !== null) headers.set("x-reduct-start-ts", startTs);
    if (labels !== null) headers.set("x-reduct-labels", labels);
    return headers;
  });

const sortedByEntryThenTs = (records: readonly { entryIndex: number; ts: number }[]) =>
  records.every(
    (r, i) =>
      i === 0 ||
      records[i - 1]!.entryIndex < r.entryIndex ||
      (records[i - 1]!.entryIndex === r.entryIndex && records[i - 1]!.ts < r.ts),
  );

describe("random header maps only ever fail with our HttpError (422/431)", () => {
  it("batch v1 and v2 parsers (all forms), label and content-length readers", () => {
    fc.assert(
      fc.property(headerMap, (headers) => {
        const v1 = onlyHttpErrors(() => parseBatchV1Write(headers));
        if (v1) {
          expect(v1.every((r, i) => i === 0 || v1[i - 1]!.ts < r.ts)).toBe(true);
          for (const record of v1) {
            expect(Object.keys(record.labels).length).toBeLessThanOrEqual(MAX_LABELS_PER_RECORD);
            expect(Object.keys(record.labels).some((name) => name.startsWith("@") || name === "")).toBe(false);
          }
        }
        onlyHttpErrors(() => parseBatchV1Update(headers));
        onlyHttpErrors(() => parseBatchV1Remove(headers));
        const v2 = onlyHttpErrors(() => parseBatchV2Write(headers));
        if (v2) {
          expect(sortedByEntryThenTs(v2.records)).toBe(true);
          for (const record of v2.records) {
            expect(record.entry).toBe(v2.entries[record.entryIndex]);
            expect(record.ts).toBe(v2.startTs + record.delta);
            expect(record.ts).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
            expect(Object.keys(record.labels).some((name) => name.startsWith("@") || name === "")).toBe(false);
          }
        }
        const update = onlyHttpErrors(() => parseBatchV2Update(headers));
        if (update) expect(sortedByEntryThenTs(update.records)).toBe(true);
        const removal = onlyHttpErrors(() => parseBatchV2Remove(headers));
        if (removal) expect(sortedByEntryThenTs(removal.records)).toBe(true);
        const labels = onlyHttpErrors(() => readLabelHeaders(headers));
        if (labels) for (const name of Object.keys(labels)) expect(utf8(name)).toBeLessThanOrEqual(MAX_LABEL_NAME_BYTES);
        onlyHttpErrors(() => readContentLength(headers));
        onlyHttpErrors(() => validateContentType(headers.get("content-type")));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  /** Any string a Worker can see in a header value or URL: chars 0x00–0xFF plus some beyond. */
  const anyText = fc.oneof(
    fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    value,
  );

  it("string-level codecs: timestamps, content types, entry names, v1 values, name decoding", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const ts = onlyHttpErrors(() => parseTimestamp(text));
        if (ts !== undefined) expect(Number.isSafeInteger(ts) && ts >= 0).toBe(true);
        onlyHttpErrors(() => validateContentType(text));
        onlyHttpErrors(() => validateEntryName(text));
        onlyHttpErrors(() => parseV1Value(text));
        const decoded = decodeName(text);
        if (decoded.ok && /^[\x20-\x7e]*$/.test(text) && !text.includes("%")) expect(decoded.name).toBe(text);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const utf8 = (text: string) => encoder.encode(text).length;
/** Strings that survive UTF-8 (no lone surrogates). */
const unicodeName = fc
  .string({ unit: "binary", minLength: 1, maxLength: 10 })
  .filter((s) => decoder.decode(encoder.encode(s)) === s);

/**
 * Label values that may be stored: visible ASCII, not blank-padded, non-empty, not starting with `"`
 * and never holding both `,` and `"`.
 */
const labelValue = fc
  .string({ unit: chars("abcXYZ019 ,=;:/[]{}!#$%&'()*+-.<>?@\\^_`|~\""), minLength: 1, maxLength: 12 })
  .filter((s) => s.trim() === s && s !== "" && !s.startsWith('"') && !(s.includes(",") && s.includes('"')));
/** Label names that may be stored: header tokens (case kept), never `__proto__`. */
const labelName = fc.string({ unit: chars("abcXYZ019!#$%&'*+-.^_`|~"), minLength: 1, maxLength: 8 });
const contentType = fc.oneof(
  fc.constantFrom("application/octet-stream", "text/plain", "text/csv;charset=utf-8", "a/b", "x=y"),
  fc.string({ unit: chars("abcxyz/+-.;= "), minLength: 1, maxLength: 12 }).filter((s) => s.trim() === s && s !== ""),
);
const timestamp = fc.oneof(fc.nat({ max: 2000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const size = fc.oneof(fc.nat({ max: 100 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

function labelsFrom(pool: readonly string[]) {
  const caseless = (pairs: Array<[string, string]>) =>
    new Set(pairs.map(([name]) => name.toLowerCase())).size === new Set(pairs.map(([name]) => name)).size;
  return fc
    .array(fc.tuple(fc.constantFrom(...pool), labelValue), { maxLength: 5 })
    .filter(caseless)
    .map((pairs) => Object.fromEntries(pairs));
}

describe("render → parse is the identity", () => {
  it("v2: random multi-entry batches with unicode entry and label names", () => {
    const batch = fc
      .record({
        entries: fc.uniqueArray(unicodeName, { minLength: 1, maxLength: 4 }),
        labelPool: fc.uniqueArray(fc.oneof(labelName, fc.constantFrom("constructor", "toString", "0", "1", "room", "100%")), {
          minLength: 1,
          maxLength: 6,
        }),
      })
      .chain(({ entries, labelPool }) =>
        fc.uniqueArray(
          fc.record({
            entry: fc.constantFrom(...entries),
            ts: timestamp,
            size,
            contentType,
            labels: labelsFrom(labelPool),
          }),
          { maxLength: 25, selector: (r) => `${r.ts}/${r.entry}` },
        ),
      );
    fc.assert(
      fc.property(batch, (records: BatchRecordV2[]) => {
        const rendered = renderBatchV2(records);
        if (records.length === 0) {
          // An empty read batch has an empty x-reduct-entries, which a request may not have.
          expect(() => parseBatchV2Write(new Headers(rendered.headers))).toThrow("x-reduct-entries header is required");
          return;
        }
        const parsed = parseBatchV2Write(new Headers(rendered.headers));
        expect(parsed.entries).toEqual(rendered.entries);
        expect(parsed.startTs).toBe(rendered.startTs);
        expect(parsed.records).toEqual(rendered.records);
        // The rendered records are exactly the input records, in body order.
        const key = (r: BatchRecordV2) => `${r.ts}/${r.entry}`;
        const byKey = new Map(records.map((r) => [key(r), r]));
        expect(parsed.records).toHaveLength(records.length);
        for (const record of parsed.records) {
          const original = byKey.get(key(record))!;
          expect({ ...record.labels }).toEqual({ ...original.labels });
          expect([record.size, record.contentType]).toEqual([original.size, original.contentType]);
        }
        // Entries are ordered by their first timestamp, ties by name.
        const first = rendered.entries.map((e) => Math.min(...records.filter((r) => r.entry === e).map((r) => r.ts)));
        for (let i = 1; i < first.length; i++) {
          const order = first[i - 1]! - first[i]! || compareCodePoints(rendered.entries[i - 1]!, rendered.entries[i]!);
          expect(order).toBeLessThan(0);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("v1: random single-entry batches", () => {
    const batch = fc.uniqueArray(
      fc.record({
        ts: timestamp,
        size,
        contentType,
        labels: labelsFrom(["a", "b", "label1", "x-y", "constructor", "0", "tags"]),
      }),
      { maxLength: 25, selector: (r) => r.ts },
    );
    fc.assert(
      fc.property(batch, (records: BatchRecordV1[]) => {
        const parsed = parseBatchV1Write(new Headers(renderBatchV1(records)));
        expect(parsed).toEqual([...records].sort((a, b) => a.ts - b.ts));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("names: encodeName then decodeName is the identity and yields only token chars", () => {
    fc.assert(
      fc.property(unicodeName, (name) => {
        const encoded = encodeName(name);
        expect(encoded).toMatch(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
        expect(decodeName(encoded)).toEqual({ ok: true, name });
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
