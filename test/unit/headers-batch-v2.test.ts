// Batch protocol v2: name encoding, request parsing (write/update/remove) with every 422 of
// the request grammar, response rendering with the delta rules, the header budget, and round trips.
import { describe, expect, it } from "vitest";
import {
  type BatchRecordV2,
  decodeName,
  encodeName,
  headerBytes,
  MAX_BATCH_HEADER_BYTES,
  parseBatchV2Remove,
  parseBatchV2Update,
  parseBatchV2Write,
  renderBatchV2,
  renderBatchV2WithinBudget,
  renderEntriesHeader,
  renderRecordErrorV2,
} from "../../src/api/headers";
import { HttpError } from "../../src/errors";

function thrown(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected an HttpError, nothing was thrown");
}

const OCTET = "application/octet-stream";
const strip = (records: readonly BatchRecordV2[]): BatchRecordV2[] =>
  records.map(({ entry, ts, size, contentType, labels }) => ({ entry, ts, size, contentType, labels }));

/** A request with the given entries/start-ts (and optional labels) plus record headers. */
function request(entries: string, startTs: string, records: Array<[string, string]>, labels?: string): Headers {
  const headers = new Headers([
    ["x-reduct-entries", entries],
    ["x-reduct-start-ts", startTs],
  ]);
  if (labels !== undefined) headers.set("x-reduct-labels", labels);
  for (const [name, value] of records) headers.set(name, value);
  return headers;
}

describe("encodeName / decodeName", () => {
  it.each([
    ["a/x/y/$meta", "a%2Fx%2Fy%2F$meta"],
    ["ro/topic/1", "ro%2Ftopic%2F1"],
    ["entry-1_foo~bar", "entry-1_foo~bar"],
    ["!#$&'*+-.^_`|~", "!#$&'*+-.^_`|~"],
    ["a b,c=d", "a%20b%2Cc%3Dd"],
    ['q"@', "q%22%40"],
    ["é", "%C3%A9"],
    ["😀", "%F0%9F%98%80"],
    ["100%", "100%25"],
    ["\u{feff}x", "%EF%BB%BFx"],
  ])("%j ⇄ %j", (name, encoded) => {
    expect(encodeName(name)).toBe(encoded);
    expect(decodeName(encoded)).toEqual({ ok: true, name });
  });

  it.each([
    ["a/b", "a/b"],
    ["a%2fb", "a/b"],
    ["%24meta", "$meta"],
    ["", ""],
  ])("decodes leniently: %j → %j", (encoded, name) => {
    expect(decodeName(encoded)).toEqual({ ok: true, name });
  });

  it.each([
    ["foo%ZZ", "encoding"],
    ["%", "encoding"],
    ["a%4", "encoding"],
    ["%C3", "utf8"],
    ["%FF", "utf8"],
    ["%C3%28", "utf8"],
  ])("%j fails with %s", (encoded, failure) => {
    expect(decodeName(encoded)).toEqual({ ok: false, failure });
  });

  it("renderEntriesHeader encodes and joins", () => {
    expect(renderEntriesHeader(["cam-1", "robot/arm"])).toBe("cam-1,robot%2Farm");
  });
});

describe("parseBatchV2Write", () => {
  it("parses ReductStore's documented example: entry-first body order, inheritance, indexed labels, quoted values", () => {
    const headers = request(
      "cam-1,robot%2Farm",
      "1700000000000000",
      [
        ["content-length", "10"],
        ["x-reduct-0-0", "3,text/plain,0=lab"],
        ["x-reduct-0-100000", "2"],
        ["x-reduct-1-50000", '5,application/octet-stream,0=line,1="a,b"'],
      ],
      "room,tags",
    );
    expect(parseBatchV2Write(headers)).toEqual({
      entries: ["cam-1", "robot/arm"],
      startTs: 1_700_000_000_000_000,
      records: [
        {
          entry: "cam-1",
          entryIndex: 0,
          delta: 0,
          ts: 1_700_000_000_000_000,
          size: 3,
          contentType: "text/plain",
          labels: { room: "lab" },
        },
        {
          entry: "cam-1",
          entryIndex: 0,
          delta: 100_000,
          ts: 1_700_000_000_100_000,
          size: 2,
          contentType: "text/plain",
          labels: { room: "lab" },
        },
        {
          entry: "robot/arm",
          entryIndex: 1,
          delta: 50_000,
          ts: 1_700_000_000_050_000,
          size: 5,
          contentType: OCTET,
          labels: { room: "line", tags: "a,b" },
        },
      ],
    });
  });

  it("orders by entry index, then timestamp (not by header name or time first)", () => {
    const headers = request("x-0,x-1", "1000", [
      ["x-reduct-1-0", "3,text/plain"],
      ["x-reduct-0-10", "2,text/plain"],
      ["x-reduct-0-9", "1,text/plain"],
    ]);
    expect(parseBatchV2Write(headers).records.map((r) => [r.entry, r.ts])).toEqual([
      ["x-0", 1009],
      ["x-0", 1010],
      ["x-1", 1000],
    ]);
  });

  it("reference cases: literal and indexed keys, reuse, removal", () => {
    const mixed = request(
      "entry,ro%2Ftopic",
      "1000",
      [
        ["x-reduct-1-15", "3,text/plain,0=z"],
        ["x-reduct-0-10", "5,text/csv,label=value"],
      ],
      "label",
    );
    expect(strip(parseBatchV2Write(mixed).records)).toEqual([
      { entry: "entry", ts: 1010, size: 5, contentType: "text/csv", labels: { label: "value" } },
      { entry: "ro/topic", ts: 1015, size: 3, contentType: "text/plain", labels: { label: "z" } },
    ]);

    const reuse = request(
      "entry",
      "0",
      [
        ["x-reduct-0-0", "10,text/plain,0=y"],
        ["x-reduct-0-5", "2"],
        ["x-reduct-0-10", "3,,0=z"],
      ],
      "x",
    );
    expect(parseBatchV2Write(reuse).records.map((r) => [r.contentType, r.labels])).toEqual([
      ["text/plain", { x: "y" }],
      ["text/plain", { x: "y" }],
      ["text/plain", { x: "z" }],
    ]);

    const indexes = request(
      "entry",
      "0",
      [
        ["x-reduct-0-0", "10,text/plain,0=1,1=2"],
        ["x-reduct-0-5", "2,,0="],
      ],
      "a,b",
    );
    expect(parseBatchV2Write(indexes).records.map((r) => r.labels)).toEqual([{ a: "1", b: "2" }, { b: "2" }]);

    const literal = request("entry", "0", [
      ["x-reduct-0-0", "10,text/plain,a=1,b=2"],
      ["x-reduct-0-5", "5,text/plain,b="],
    ]);
    expect(parseBatchV2Write(literal).records.map((r) => r.labels)).toEqual([{ a: "1", b: "2" }, { a: "1" }]);
  });

  it("numeric keys are literal names without x-reduct-labels", () => {
    expect(parseBatchV2Write(request("e", "0", [["x-reduct-0-0", "1,a/b,0=x,12=y"]])).records[0]?.labels).toEqual({
      0: "x",
      12: "y",
    });
  });

  it("content type: empty keeps the previous (default for a first record); a new one replaces it", () => {
    const headers = request("e,f", "0", [
      ["x-reduct-0-0", "1,text/plain"],
      ["x-reduct-0-1", "1,"],
      ["x-reduct-0-2", "1, ,a=1"],
      ["x-reduct-0-3", "1,text/csv"],
      ["x-reduct-0-4", "1"],
      ["x-reduct-1-0", "1,"],
    ]);
    expect(parseBatchV2Write(headers).records.map((r) => r.contentType)).toEqual([
      "text/plain",
      "text/plain",
      "text/plain",
      "text/csv",
      "text/csv",
      OCTET,
    ]);
  });

  it("inherits only from the same entry", () => {
    const headers = request("e,f", "0", [
      ["x-reduct-0-0", "1,text/plain,a=1"],
      ["x-reduct-1-0", "1,,b=2"],
      ["x-reduct-1-1", "1"],
    ]);
    expect(parseBatchV2Write(headers).records.map((r) => [r.entry, r.contentType, r.labels])).toEqual([
      ["e", "text/plain", { a: "1" }],
      ["f", OCTET, { b: "2" }],
      ["f", OCTET, { b: "2" }],
    ]);
  });

  it("ignores x-reduct- headers whose last segment is not digits, and allows an empty batch", () => {
    const headers = request("e", "0", [
      ["x-reduct-content-length", "0"],
      ["x-reduct-query-id", "7"],
      ["x-reduct-last", "true"],
    ]);
    expect(parseBatchV2Write(headers)).toEqual({ entries: ["e"], startTs: 0, records: [] });
  });

  const latin1 = String.fromCharCode(0xe9);
  const missing = (omit: string) => {
    const headers = request("e", "0", [["x-reduct-0-0", "1,a/b"]]);
    headers.delete(omit);
    return headers;
  };

  it.each<[string, () => Headers, string]>([
    ["no x-reduct-entries", () => missing("x-reduct-entries"), "x-reduct-entries header is required"],
    ["empty x-reduct-entries", () => request("", "0", []), "x-reduct-entries header is required"],
    ["blank x-reduct-entries", () => request("  ", "0", []), "x-reduct-entries header is required"],
    ["non-ASCII x-reduct-entries", () => request(`caf${latin1}`, "0", []), "Invalid entries header"],
    ["an empty entry name", () => request("a,,b", "0", []), "x-reduct-entries header must not contain empty entry names"],
    ["a trailing comma in entries", () => request("a,", "0", []), "x-reduct-entries header must not contain empty entry names"],
    ["a repeated entry", () => request("a,%61", "0", []), "x-reduct-entries header must not contain an entry twice"],
    ["a bad % escape in entries", () => request("foo%ZZ", "0", []), "Invalid entry encoding in header name: 'foo%ZZ'"],
    ["a non-UTF-8 entry", () => request("ok,%C3", "0", []), "Entry name is not valid UTF-8 in header '%C3'"],
    ["no x-reduct-start-ts", () => missing("x-reduct-start-ts"), "x-reduct-start-ts header is required"],
    ["start-ts abc", () => request("e", "abc", []), "Invalid x-reduct-start-ts header"],
    ["start-ts -1", () => request("e", "-1", []), "Invalid x-reduct-start-ts header"],
    ["start-ts 1.5", () => request("e", "1.5", []), "Invalid x-reduct-start-ts header"],
    ["start-ts empty", () => request("e", "", []), "Invalid x-reduct-start-ts header"],
    ["start-ts 2^53", () => request("e", "9007199254740992", []), "Invalid x-reduct-start-ts header"],
    ["empty x-reduct-labels", () => request("e", "0", [], ""), "x-reduct-labels header is empty"],
    ["an empty label name", () => request("e", "0", [], "a,,b"), "x-reduct-labels header must not contain empty label names"],
    ["a bad % escape in labels", () => request("e", "0", [], "a%ZZ"), "Invalid label encoding in header value: 'a%ZZ'"],
    ["a non-UTF-8 label name", () => request("e", "0", [], "%FF"), "Invalid label encoding in header value: '%FF'"],
    ["non-ASCII x-reduct-labels", () => request("e", "0", [], latin1), "Invalid labels header"],
  ])("%s → 422 %s", (_, headers, message) => {
    expect(thrown(() => parseBatchV2Write(headers()))).toMatchObject({ status: 422, message });
  });

  it.each([
    ["x-reduct-time-123", "Invalid header 'x-reduct-time-123': entry index must be a number"],
    ["x-reduct-error-0-5", "Invalid header 'x-reduct-error-0-5': entry index must be a number"],
    ["x-reduct-a-1", "Invalid header 'x-reduct-a-1': entry index must be a number"],
    ["x-reduct--1", "Invalid header 'x-reduct--1': entry index must be a number"],
    ["x-reduct-123", "Invalid batched header 'x-reduct-123'"],
    ["x-reduct-", "Invalid batched header 'x-reduct-'"],
    ["x-reduct-0-", "Invalid header 'x-reduct-0-': must be an unix timestamp in microseconds"],
    ["x-reduct-0-9007199254740992", "Invalid header 'x-reduct-0-9007199254740992': must be an unix timestamp in microseconds"],
    ["x-reduct-1-0", "Invalid header 'x-reduct-1-0': entry index out of range"],
    ["x-reduct-99999999999999999999-0", "Invalid header 'x-reduct-99999999999999999999-0': entry index out of range"],
  ])("record header %s → 422 %s", (name, message) => {
    expect(thrown(() => parseBatchV2Write(request("e", "0", [[name, "1,a/b"]])))).toMatchObject({ status: 422, message });
  });

  it("start-ts + delta beyond 2^53 − 1 is not a timestamp", () => {
    const headers = request("e", "10", [["x-reduct-0-9007199254740982", "1,a/b"]]);
    expect(thrown(() => parseBatchV2Write(headers)).message).toBe(
      "Invalid header 'x-reduct-0-9007199254740982': must be an unix timestamp in microseconds",
    );
    const edge = request("e", "9", [["x-reduct-0-9007199254740982", "1,a/b"]]);
    expect(parseBatchV2Write(edge).records[0]?.ts).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("rejects two headers naming the same record", () => {
    const headers = request("e", "0", [
      ["x-reduct-0-5", "1,a/b"],
      ["x-reduct-0-05", "1,a/b"],
    ]);
    expect(thrown(() => parseBatchV2Write(headers))).toMatchObject({
      status: 422,
      message: "Invalid header 'x-reduct-0-5': another header names the same record",
    });
  });

  it.each([
    ["10", "Content-type and labels must be provided for the first record of an entry"],
    ["", "Invalid batched header"],
    ["abc,text/plain", "Invalid batched header"],
    [",text/plain", "Invalid batched header"],
    ["-1,text/plain", "Invalid batched header"],
    ["9007199254740992,text/plain", "Invalid batched header"],
    ["abc", "Invalid batched header"],
    ['1,a/b,x="a', "Invalid batched header"],
    ['1,a/b,x="a"b', "Invalid batched header"],
    ["1,a/b,junk", "Invalid batched header"],
    ["1,a/b,a=1,junk", "Invalid batched header"],
    ["1,a/b,=1", "Invalid batched header"],
    [`1,a/b,a=caf${latin1}`, "Invalid batched header"],
    ["1,a/b,@a=1", "Label names must not start with '@': reserved for computed labels"],
    ["1,a/b,a=1,@b=", "Label names must not start with '@': reserved for computed labels"],
  ])("first record value %j → 422 %s", (value, message) => {
    expect(thrown(() => parseBatchV2Write(request("e", "0", [["x-reduct-0-0", value]])))).toMatchObject({ status: 422, message });
  });

  it("a label value over 4096 bytes → 422", () => {
    const value = `1,a/b,a=${"v".repeat(4097)}`;
    expect(thrown(() => parseBatchV2Write(request("e", "0", [["x-reduct-0-0", value]])))).toMatchObject({
      status: 422,
      message: "Label value of 'a' must be at most 4096 bytes",
    });
  });

  it.each([
    ["1,a/b,5=x", "a,b", "Label index '5' is out of range"],
    ["1,a/b,2=x", "a,b", "Label index '2' is out of range"],
    ["1,a/b,99999999999999999999=x", "a", "Label index '99999999999999999999' is out of range"],
    ["1,a/b,0=x", "%40cpu", "Label names must not start with '@': reserved for computed labels"],
  ])("value %j with x-reduct-labels %j → 422 %s", (value, labels, message) => {
    expect(thrown(() => parseBatchV2Write(request("e", "0", [["x-reduct-0-0", value]], labels)))).toMatchObject({
      status: 422,
      message,
    });
  });

  it("label caps apply to the labels a record ends up with, inherited ones included", () => {
    const records: Array<[string, string]> = Array.from({ length: 129 }, (_, i) => [`x-reduct-0-${i}`, `1,,l${i}=v`]);
    records[0] = ["x-reduct-0-0", "1,a/b,l0=v"];
    expect(thrown(() => parseBatchV2Write(request("e", "0", records)))).toMatchObject({
      status: 422,
      message: "A record can have at most 128 labels",
    });
  });

  it("processes records in (entry, time) order: an earlier bad value wins over a later range error", () => {
    const headers = request("e", "0", [
      ["x-reduct-0-0", "abc"],
      ["x-reduct-5-0", "1,a/b"],
    ]);
    expect(thrown(() => parseBatchV2Write(headers)).message).toBe("Invalid batched header");
  });

  it("431 when the request's headers exceed the batch budget", () => {
    const value = `1,a/b,k=${"v".repeat(4000)}`;
    const count = Math.ceil(MAX_BATCH_HEADER_BYTES / value.length) + 1;
    const records = Array.from({ length: count }, (_, i): [string, string] => [`x-reduct-0-${i}`, value]);
    expect(thrown(() => parseBatchV2Write(request("e", "0", records)))).toMatchObject({
      status: 431,
      message: `Batched headers must be at most ${MAX_BATCH_HEADER_BYTES} bytes in total`,
    });
  });
});

describe("parseBatchV2Update", () => {
  const example = () =>
    request(
      "x-0,x-1",
      "1000",
      [
        ["x-reduct-0-0", "0,,0=one,1=,c=3"],
        ["x-reduct-1-10", "0,,a=two"],
      ],
      "a,b",
    );

  it("parses ReductStore's documented example", () => {
    expect(parseBatchV2Update(example())).toEqual({
      entries: ["x-0", "x-1"],
      startTs: 1000,
      records: [
        { entry: "x-0", entryIndex: 0, delta: 0, ts: 1000, set: { a: "one", c: "3" }, remove: ["b"] },
        { entry: "x-1", entryIndex: 1, delta: 10, ts: 1010, set: { a: "two" }, remove: [] },
      ],
    });
  });

  it("ops accumulate per entry: later records inherit earlier ops, then apply their own", () => {
    const headers = request("e,f", "0", [
      ["x-reduct-0-0", "0,,a=1"],
      ["x-reduct-0-1", "0"],
      ["x-reduct-0-2", "0,text/plain"],
      ["x-reduct-0-3", "0,,b=2,a="],
      ["x-reduct-1-0", "0,,c=3"],
    ]);
    expect(parseBatchV2Update(headers).records.map(({ entry, ts, set, remove }) => ({ entry, ts, set, remove }))).toEqual([
      { entry: "e", ts: 0, set: { a: "1" }, remove: [] },
      { entry: "e", ts: 1, set: { a: "1" }, remove: [] },
      { entry: "e", ts: 2, set: { a: "1" }, remove: [] },
      { entry: "e", ts: 3, set: { b: "2" }, remove: ["a"] },
      { entry: "f", ts: 0, set: { c: "3" }, remove: [] },
    ]);
  });

  it.each([
    ["0", "Content-type and labels must be provided for the first record of an entry"],
    ["x,,a=1", "Invalid batched header"],
    ["0,,@a=1", "Label names must not start with '@': reserved for computed labels"],
    ["0,,a=1,junk", "Invalid batched header"],
  ])("%j → 422 %s", (value, message) => {
    expect(thrown(() => parseBatchV2Update(request("e", "0", [["x-reduct-0-0", value]])))).toMatchObject({
      status: 422,
      message,
    });
  });
});

describe("parseBatchV2Remove", () => {
  it("reads header names only; values are ignored", () => {
    const headers = request("a,b", "1000", [
      ["x-reduct-1-2", ""],
      ["x-reduct-0-0", "0,"],
      ["x-reduct-0-1", "garbage,=@x"],
    ]);
    expect(parseBatchV2Remove(headers)).toEqual({
      entries: ["a", "b"],
      startTs: 1000,
      records: [
        { entry: "a", entryIndex: 0, delta: 0, ts: 1000 },
        { entry: "a", entryIndex: 0, delta: 1, ts: 1001 },
        { entry: "b", entryIndex: 1, delta: 2, ts: 1002 },
      ],
    });
  });

  it("still checks names, ranges and the common headers", () => {
    expect(thrown(() => parseBatchV2Remove(request("a", "0", [["x-reduct-2-0", ""]]))).message).toBe(
      "Invalid header 'x-reduct-2-0': entry index out of range",
    );
    expect(thrown(() => parseBatchV2Remove(request("a", "x", []))).message).toBe("Invalid x-reduct-start-ts header");
  });
});

describe("renderBatchV2", () => {
  it("renders ReductStore's documented example: entries by first timestamp, body by entry then time", () => {
    const rendered = renderBatchV2([
      { entry: "x-0", ts: 1010, size: 2, contentType: "text/plain", labels: {} },
      { entry: "x-1", ts: 1000, size: 3, contentType: "text/plain", labels: {} },
    ]);
    expect(rendered.headers).toEqual([
      ["x-reduct-entries", "x-1,x-0"],
      ["x-reduct-start-ts", "1000"],
      ["x-reduct-0-0", "3,text/plain"],
      ["x-reduct-1-10", "2,text/plain"],
    ]);
    expect(rendered.records.map((r) => [r.entry, r.entryIndex, r.delta, r.size])).toEqual([
      ["x-1", 0, 0, 3],
      ["x-0", 1, 10, 2],
    ]);
    expect(rendered.entries).toEqual(["x-1", "x-0"]);
    expect(rendered.startTs).toBe(1000);
    expect(rendered.labelNames).toEqual([]);
  });

  it("breaks first-timestamp ties by name", () => {
    const rendered = renderBatchV2([
      { entry: "x-b", ts: 5, size: 1, contentType: "a/b", labels: {} },
      { entry: "x-a", ts: 5, size: 1, contentType: "a/b", labels: {} },
      { entry: "x-a", ts: 4, size: 1, contentType: "a/b", labels: {} },
      { entry: "x-c", ts: 5, size: 1, contentType: "a/b", labels: {} },
    ]);
    expect(rendered.entries).toEqual(["x-a", "x-b", "x-c"]);
  });

  it("applies the delta rules: content type only when changed, only changed labels, removals as idx=", () => {
    const rendered = renderBatchV2([
      { entry: "e", ts: 100, size: 1, contentType: "text/plain", labels: { b: "2", a: "1" } },
      { entry: "e", ts: 101, size: 2, contentType: "text/plain", labels: { a: "1", b: "2" } },
      { entry: "e", ts: 102, size: 3, contentType: "text/csv", labels: { a: "1", b: "2" } },
      { entry: "e", ts: 103, size: 4, contentType: "text/csv", labels: { a: "1", c: "x,y" } },
      { entry: "e", ts: 104, size: 5, contentType: "text/plain", labels: { a: "9", c: "x,y" } },
      { entry: "f", ts: 200, size: 6, contentType: "a/b", labels: { z: "1", c: "w", "a/b": "q" } },
      { entry: "f", ts: 201, size: 7, contentType: "a/b", labels: {} },
    ]);
    expect(rendered.headers).toEqual([
      ["x-reduct-entries", "e,f"],
      ["x-reduct-start-ts", "100"],
      ["x-reduct-labels", "a,b,c,a%2Fb,z"],
      ["x-reduct-0-0", "1,text/plain,0=1,1=2"],
      ["x-reduct-0-1", "2"],
      ["x-reduct-0-2", "3,text/csv"],
      ["x-reduct-0-3", '4,,1=,2="x,y"'],
      ["x-reduct-0-4", "5,text/plain,0=9"],
      ["x-reduct-1-100", "6,a/b,2=w,3=q,4=1"],
      ["x-reduct-1-101", "7,,2=,3=,4="],
    ]);
    expect(rendered.labelNames).toEqual(["a", "b", "c", "a/b", "z"]);
  });

  it("sorts ops by label index, not by name", () => {
    const rendered = renderBatchV2([
      { entry: "e", ts: 0, size: 1, contentType: "a/b", labels: { z: "1" } },
      { entry: "f", ts: 1, size: 1, contentType: "a/b", labels: { a: "x", z: "y" } },
    ]);
    expect(rendered.headers.slice(2)).toEqual([
      ["x-reduct-labels", "z,a"],
      ["x-reduct-0-0", "1,a/b,0=1"],
      ["x-reduct-1-1", "1,a/b,0=y,1=x"],
    ]);
  });

  it("renders a stored empty label value as `idx=`, as ReductStore does", () => {
    const rendered = renderBatchV2([
      { entry: "e", ts: 0, size: 1, contentType: "a/b", labels: { a: "", b: "1" } },
      { entry: "e", ts: 1, size: 1, contentType: "a/b", labels: { a: "", b: "1" } },
      { entry: "e", ts: 2, size: 1, contentType: "a/b", labels: { b: "1" } },
      { entry: "e", ts: 3, size: 1, contentType: "a/b", labels: { a: "", b: "1" } },
    ]);
    expect(rendered.headers.slice(2)).toEqual([
      ["x-reduct-labels", "a,b"],
      ["x-reduct-0-0", "1,a/b,0=,1=1"],
      ["x-reduct-0-1", "1"],
      ["x-reduct-0-2", "1,,0="],
      ["x-reduct-0-3", "1,,0="],
    ]);
  });

  it("encodes entry names", () => {
    const rendered = renderBatchV2([{ entry: "a/x/y/$meta", ts: 7, size: 0, contentType: "a/b", labels: {} }]);
    expect(rendered.headers[0]).toEqual(["x-reduct-entries", "a%2Fx%2Fy%2F$meta"]);
  });

  it("an empty batch is x-reduct-entries: (empty) and x-reduct-start-ts: 0", () => {
    expect(renderBatchV2([])).toEqual({
      entries: [],
      startTs: 0,
      labelNames: [],
      headers: [
        ["x-reduct-entries", ""],
        ["x-reduct-start-ts", "0"],
      ],
      records: [],
    });
  });

  it("refuses two records with the same entry and timestamp (a caller bug)", () => {
    const record: BatchRecordV2 = { entry: "e", ts: 1, size: 1, contentType: "a/b", labels: {} };
    expect(() => renderBatchV2([record, { ...record }])).toThrow("two records of 'e' at 1");
  });
});

describe("v2 round trips (render → parse)", () => {
  it("ReductStore's documented example", () => {
    const parsed = parseBatchV2Write(
      request(
        "cam-1,robot%2Farm",
        "1700000000000000",
        [
          ["x-reduct-0-0", "3,text/plain,0=lab"],
          ["x-reduct-0-100000", "2"],
          ["x-reduct-1-50000", '5,application/octet-stream,0=line,1="a,b"'],
        ],
        "room,tags",
      ),
    );
    const rendered = renderBatchV2(strip(parsed.records));
    const reparsed = parseBatchV2Write(new Headers(rendered.headers));
    expect(reparsed).toEqual(parsed);
    expect(reparsed.records).toEqual(rendered.records);
  });

  it("records after ReductStore's documented update example", () => {
    const before: BatchRecordV2[] = [
      { entry: "x-0", ts: 1000, size: 1, contentType: "a/b", labels: { b: "old", keep: "k" } },
      { entry: "x-1", ts: 1010, size: 2, contentType: "a/b", labels: {} },
    ];
    const updates = parseBatchV2Update(
      request(
        "x-0,x-1",
        "1000",
        [
          ["x-reduct-0-0", "0,,0=one,1=,c=3"],
          ["x-reduct-1-10", "0,,a=two"],
        ],
        "a,b",
      ),
    ).records;
    const after = before.map((record) => {
      const update = updates.find((u) => u.entry === record.entry && u.ts === record.ts)!;
      const labels = { ...record.labels, ...update.set };
      for (const name of update.remove) delete labels[name];
      return { ...record, labels };
    });
    expect(after.map((r) => r.labels)).toEqual([{ keep: "k", a: "one", c: "3" }, { a: "two" }]);
    expect(strip(parseBatchV2Write(new Headers(renderBatchV2(after).headers)).records)).toEqual(after);
  });

  it("interleaved entries, label churn and awkward names", () => {
    const records: BatchRecordV2[] = [
      { entry: "b", ts: 5, size: 1, contentType: "a/b", labels: { "x.y": "1", "100%": "p" } },
      { entry: "a/$meta", ts: 6, size: 2, contentType: "c/d", labels: { key: "k", v: "[1, 2]" } },
      { entry: "b", ts: 7, size: 3, contentType: "a/b", labels: { "100%": "q" } },
      { entry: "a/$meta", ts: 8, size: 4, contentType: "e/f", labels: { key: "k", v: 'say "hi"' } },
      { entry: "b", ts: 9, size: 0, contentType: "a/b", labels: { "~|^": "u=v", "x.y": "1", Upper: "a b" } },
    ];
    const rendered = renderBatchV2(records);
    const sorted = [...records].sort(
      (x, y) => rendered.entries.indexOf(x.entry) - rendered.entries.indexOf(y.entry) || x.ts - y.ts,
    );
    expect(strip(parseBatchV2Write(new Headers(rendered.headers)).records)).toEqual(sorted);
  });
});

describe("headerBytes / renderBatchV2WithinBudget", () => {
  it("headerBytes counts `name: value\\r\\n`", () => {
    expect(
      headerBytes([
        ["a", "bc"],
        ["x-reduct-0-0", "1"],
      ]),
    ).toBe(1 + 2 + 4 + 12 + 1 + 4);
    expect(headerBytes(new Headers([["a", "bc"]]))).toBe(7);
  });

  const records: BatchRecordV2[] = Array.from({ length: 20 }, (_, i) => ({
    entry: `e${i % 3}`,
    ts: 1000 + i,
    size: 1,
    contentType: "text/plain",
    labels: { n: `${i}`, pad: "p".repeat(100 + i) },
  }));

  it("returns the whole batch when it fits", () => {
    const whole = renderBatchV2(records);
    expect(renderBatchV2WithinBudget(records, headerBytes(whole.headers))).toEqual(whole);
  });

  it("returns the longest prefix that fits, and the next prefix would not", () => {
    const budget = 1500;
    const fitted = renderBatchV2WithinBudget(records, budget);
    const k = fitted.records.length;
    expect(k).toBeGreaterThan(1);
    expect(k).toBeLessThan(records.length);
    expect(headerBytes(fitted.headers)).toBeLessThanOrEqual(budget);
    expect(headerBytes(renderBatchV2(records.slice(0, k + 1)).headers)).toBeGreaterThan(budget);
    expect(fitted).toEqual(renderBatchV2(records.slice(0, k)));
  });

  it("always keeps at least one record so a reader makes progress", () => {
    expect(renderBatchV2WithinBudget(records, 10).records).toHaveLength(1);
    expect(renderBatchV2WithinBudget([], 10).records).toHaveLength(0);
  });
});

describe("renderRecordErrorV2", () => {
  it("renders x-reduct-error-<idx>-<delta>: <status>,<message>", () => {
    expect(renderRecordErrorV2(1, 2, { status: 404, message: "Record 1002 not found in entry b/e" })).toEqual([
      "x-reduct-error-1-2",
      "404,Record 1002 not found in entry b/e",
    ]);
    expect(renderRecordErrorV2(0, 0, { status: 409, message: "A record with timestamp 1000000 already exists" })).toEqual([
      "x-reduct-error-0-0",
      "409,A record with timestamp 1000000 already exists",
    ]);
  });
});
