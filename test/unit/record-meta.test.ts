// Descriptor lengths must reproduce every worked example of ReductStore's size formula: clients assert exact sizes.
import { describe, expect, it } from "vitest";
import { DEFAULT_CONTENT_TYPE, type RecordMetaInput, recordMetaLength, varintLength } from "../../src/storage/record-meta";

const SECOND_US = 1_000_000;

/** Size an entry reaches when `records` are written in order into one block. */
function entrySize(records: { ts: number; size: number; labels?: Record<string, string>; contentType?: string }[]): number {
  let begin = 0;
  let total = 0;
  for (const record of records) {
    total +=
      record.size +
      recordMetaLength({
        ts: record.ts,
        begin,
        end: begin + record.size,
        labels: record.labels ?? {},
        contentType: record.contentType ?? DEFAULT_CONTENT_TYPE,
        finished: false,
      });
    begin += record.size;
  }
  return total;
}

const base: RecordMetaInput = { ts: SECOND_US, begin: 0, end: 8, labels: {}, contentType: DEFAULT_CONTENT_TYPE, finished: false };

describe("varintLength", () => {
  it.each([
    [0, 1],
    [1, 1],
    [127, 1],
    [128, 2],
    [16_383, 2],
    [16_384, 3],
    [2 ** 21 - 1, 3],
    [2 ** 21, 4],
    [2 ** 28, 5],
    [2 ** 35, 6],
    [2 ** 42, 7],
    [2 ** 49, 8],
    [Number.MAX_SAFE_INTEGER, 8],
  ])("%d takes %d bytes", (n, bytes) => {
    expect(varintLength(n)).toBe(bytes);
  });
});

describe("recordMetaLength: worked examples", () => {
  it("entry_1: 8 bytes at 1 s is 4 + 0 + 2 + 26 = 32, entry size 40", () => {
    expect(recordMetaLength(base)).toBe(32);
    expect(entrySize([{ ts: SECOND_US, size: 8 }])).toBe(40);
  });

  it("entry_2: 11 bytes at 2 s, entry size 43; the two entries make 83", () => {
    expect(entrySize([{ ts: 2 * SECOND_US, size: 11 }])).toBe(43);
    expect(entrySize([{ ts: SECOND_US, size: 8 }]) + entrySize([{ ts: 2 * SECOND_US, size: 11 }])).toBe(83);
  });

  const jsLabels = { label1: "label1", label2: "100", label3: "true" };

  it("reduct-js entry-1: 9 bytes with three labels is 4 + 2 + 26 + (18 + 15 + 16) = 81, size 90", () => {
    expect(recordMetaLength({ ...base, end: 9, labels: jsLabels })).toBe(81);
    expect(entrySize([{ ts: SECOND_US, size: 9, labels: jsLabels }])).toBe(90);
  });

  it("reduct-js entry-2: three 9-byte records in one block cost 32 + 34 + 34, size 127", () => {
    const lengths = [0, 1, 2].map((i) => recordMetaLength({ ...base, ts: (i + 2) * SECOND_US, begin: 9 * i, end: 9 * (i + 1) }));
    expect(lengths).toEqual([32, 34, 34]);
    expect(entrySize([2, 3, 4].map((s) => ({ ts: s * SECOND_US, size: 9 })))).toBe(127);
  });

  it("reduct-js bucket total is 217", () => {
    const entry1 = entrySize([{ ts: SECOND_US, size: 9, labels: jsLabels }]);
    const entry2 = entrySize([2, 3, 4].map((s) => ({ ts: s * SECOND_US, size: 9 })));
    expect(entry1 + entry2).toBe(217);
  });

  it("ts = 1000 µs (sec 0, nanos 1,000,000) takes a 6-byte timestamp field", () => {
    // 6 (ts) + 0 (begin) + 0 (end) + 26 (content type)
    expect(recordMetaLength({ ...base, ts: 1000, end: 0 })).toBe(6 + 26);
  });
});

describe("recordMetaLength: field rules", () => {
  it("a finished record (after a label update) costs 2 more bytes", () => {
    expect(recordMetaLength({ ...base, finished: true })).toBe(recordMetaLength(base) + 2);
  });

  it("ts 0 still encodes an empty timestamp message (2 bytes)", () => {
    expect(recordMetaLength({ ...base, ts: 0, end: 0, contentType: "" })).toBe(2);
  });

  it("seconds and nanos both count when present", () => {
    // sec = 1 (2 bytes), nanos = 500,000,000 (1 + 5 bytes): T = 8, field = 10
    expect(recordMetaLength({ ...base, ts: 1_500_000, end: 0, contentType: "" })).toBe(10);
  });

  it("a present-day timestamp: 5-byte seconds varint", () => {
    // sec = 1,700,000,000 (1 + 5), nanos = 123,000 (1 + 3): T = 10, field = 12
    expect(recordMetaLength({ ...base, ts: 1_700_000_000_000_123, end: 0, contentType: "" })).toBe(12);
  });

  it("begin and end are omitted when 0 and grow with their varint length", () => {
    const ct = { contentType: "" };
    expect(recordMetaLength({ ...base, ...ct, begin: 0, end: 0 })).toBe(4);
    expect(recordMetaLength({ ...base, ...ct, begin: 127, end: 128 })).toBe(4 + 2 + 3);
    expect(recordMetaLength({ ...base, ...ct, begin: 16_384, end: 64_000_000 })).toBe(4 + 4 + 5);
  });

  it("a label with an empty value or an empty name still costs its 2-byte frame", () => {
    const ct = { contentType: "", end: 0 };
    expect(recordMetaLength({ ...base, ...ct, labels: { a: "" } })).toBe(4 + 2 + 3);
    expect(recordMetaLength({ ...base, ...ct, labels: { "": "" } })).toBe(4 + 2);
  });

  it("label and content type lengths are UTF-8 bytes", () => {
    const ct = { end: 0 };
    // "é" is 2 bytes: name field 1 + 1 + 2 = 4, value field 1 + 1 + 1 = 3, label = 1 + 1 + 7 = 9
    expect(recordMetaLength({ ...base, ...ct, contentType: "", labels: { é: "x" } })).toBe(4 + 9);
    expect(recordMetaLength({ ...base, ...ct, contentType: "ü" })).toBe(4 + 1 + 1 + 2);
  });

  it("a long label value needs a 2-byte length prefix", () => {
    const value = "v".repeat(200);
    // name field 3, value field 1 + 2 + 200 = 203, L = 206 → 1 + 2 + 206 = 209
    expect(recordMetaLength({ ...base, end: 0, contentType: "", labels: { k: value } })).toBe(4 + 209);
  });
});
