// Batch protocol v1: parse/render, exact 422 messages, round trips.
import { describe, expect, it } from "vitest";
import {
  type BatchRecordV1,
  MAX_BATCH_HEADER_BYTES,
  parseBatchV1Remove,
  parseBatchV1Update,
  parseBatchV1Write,
  renderBatchV1,
  renderRecordErrorV1,
  renderV1Value,
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
const one = (value: string) => new Headers([["x-reduct-time-1000", value]]);
const parseOne = (value: string) => parseBatchV1Write(one(value))[0];

describe("parseBatchV1Write", () => {
  it("parses ReductStore's documented request example, records in timestamp order", () => {
    const headers = new Headers([
      ["content-type", OCTET],
      ["content-length", "27"],
      ["x-reduct-time-3000", "9,application/octet-stream,label1=value1,label2=value2"],
      ["x-reduct-time-1000", "9,application/octet-stream"],
      ["x-reduct-time-2000", "9,text/plain"],
    ]);
    expect(parseBatchV1Write(headers)).toEqual([
      { ts: 1000, size: 9, contentType: OCTET, labels: {} },
      { ts: 2000, size: 9, contentType: "text/plain", labels: {} },
      { ts: 3000, size: 9, contentType: OCTET, labels: { label1: "value1", label2: "value2" } },
    ]);
  });

  it("sorts timestamps numerically, not as strings", () => {
    const headers = new Headers([
      ["x-reduct-time-1000", "1,a/b"],
      ["x-reduct-time-20", "1,a/b"],
      ["x-reduct-time-300", "1,a/b"],
    ]);
    expect(parseBatchV1Write(headers).map((r) => r.ts)).toEqual([20, 300, 1000]);
  });

  it("ignores headers that are not x-reduct-time-<ts>, and an empty batch is empty", () => {
    expect(parseBatchV1Write(new Headers([["x-reduct-time", "5"]]))).toEqual([]);
    expect(parseBatchV1Write(new Headers())).toEqual([]);
  });

  it.each<[string, Omit<BatchRecordV1, "ts">]>([
    [
      "123, text/plain, label1=value1, label2=value2",
      { size: 123, contentType: "text/plain", labels: { label1: "value1", label2: "value2" } },
    ],
    [
      '123, text/plain, label1="[1, 2, 3]", label2="value2"',
      { size: 123, contentType: "text/plain", labels: { label1: "[1, 2, 3]", label2: "value2" } },
    ],
    ["123, text/plain", { size: 123, contentType: "text/plain", labels: {} }],
    ["5,", { size: 5, contentType: OCTET, labels: {} }],
    ["5, ", { size: 5, contentType: OCTET, labels: {} }],
    ["5,,a=b", { size: 5, contentType: OCTET, labels: { a: "b" } }],
    ["0,text/plain,", { size: 0, contentType: "text/plain", labels: {} }],
    ["007,x/y", { size: 7, contentType: "x/y", labels: {} }],
    ["5,x/y,a=1,junk", { size: 5, contentType: "x/y", labels: { a: "1" } }],
    ["5,x/y,junk,a=1", { size: 5, contentType: "x/y", labels: { a: "1" } }],
    ["5,x/y,a=1,,b=2,", { size: 5, contentType: "x/y", labels: { a: "1", b: "2" } }],
    ['5,x/y,x="[a,b]"', { size: 5, contentType: "x/y", labels: { x: "[a,b]" } }],
    ['5,x/y, x = "a,b" , y=2', { size: 5, contentType: "x/y", labels: { x: "a,b", y: "2" } }],
    ['5,x/y,x=a"b', { size: 5, contentType: "x/y", labels: { x: 'a"b' } }],
    ["5,x/y,a=1=2", { size: 5, contentType: "x/y", labels: { a: "1=2" } }],
    ["5,x/y,a=,b=1", { size: 5, contentType: "x/y", labels: { a: "", b: "1" } }],
    ["5,x/y,a=1,a=2", { size: 5, contentType: "x/y", labels: { a: "2" } }],
    ["5,x/y,a=1,a=", { size: 5, contentType: "x/y", labels: { a: "" } }],
    ["5,a=b", { size: 5, contentType: "a=b", labels: {} }],
    ["9007199254740991,x/y", { size: Number.MAX_SAFE_INTEGER, contentType: "x/y", labels: {} }],
  ])("%j", (value, expected) => {
    expect(parseOne(value)).toEqual({ ts: 1000, ...expected });
  });

  const nameErrors = [
    "x-reduct-time-abc",
    "x-reduct-time-",
    "x-reduct-time--1",
    "x-reduct-time-1.5",
    "x-reduct-time-9007199254740992",
  ];
  it.each(nameErrors)("header name %s → 422 must be an unix timestamp", (name) => {
    expect(thrown(() => parseBatchV1Write(new Headers([[name, "1,a/b"]])))).toMatchObject({
      status: 422,
      message: `Invalid header '${name}': must be an unix timestamp in microseconds`,
    });
  });

  it.each([
    ["5", "Invalid batched header"],
    ["", "Invalid batched header"],
    ["xxx", "Invalid batched header"],
    ["abc,text/plain", "Invalid content length"],
    [",text/plain", "Invalid content length"],
    ["-1,text/plain", "Invalid content length"],
    ["+1,text/plain", "Invalid content length"],
    ["1.5,text/plain", "Invalid content length"],
    ["9007199254740992,text/plain", "Invalid content length"],
    ['5,text/plain,x="a,b', "Invalid batched header"],
    ['5,text/plain,x="a"b', "Invalid batched header"],
    ["5,text/plain,=v", "Invalid batched header"],
    ["5,text/plain, =v", "Invalid batched header"],
    [`5,text/plain,a=caf${String.fromCharCode(0xe9)}`, "Invalid batched header"],
    ["5,text/plain,a=b\x01", "Invalid batched header"],
    ["5,text/plain,@a=1", "Label names must not start with '@': reserved for computed labels"],
    ["5,text/plain, @a=1", "Label names must not start with '@': reserved for computed labels"],
  ])("value %j → 422 %s", (value, message) => {
    expect(thrown(() => parseBatchV1Write(one(value)))).toMatchObject({ status: 422, message });
  });

  it("a label value over 4096 bytes → 422", () => {
    expect(thrown(() => parseBatchV1Write(one(`5,text/plain,big=${"v".repeat(4097)}`)))).toMatchObject({
      status: 422,
      message: "Label value of 'big' must be at most 4096 bytes",
    });
  });

  it("checks every header name before any value", () => {
    const headers = new Headers([
      ["x-reduct-time-1", "5"],
      ["x-reduct-time-zzz", "1,a/b"],
    ]);
    expect(thrown(() => parseBatchV1Write(headers)).message).toBe(
      "Invalid header 'x-reduct-time-zzz': must be an unix timestamp in microseconds",
    );
  });

  it("reports the first bad value in timestamp order", () => {
    const headers = new Headers([
      ["x-reduct-time-2", "abc,x/y"],
      ["x-reduct-time-10", "5"],
    ]);
    expect(thrown(() => parseBatchV1Write(headers)).message).toBe("Invalid content length");
  });

  it("rejects two headers naming the same timestamp", () => {
    const headers = new Headers([
      ["x-reduct-time-5", "1,a/b"],
      ["x-reduct-time-05", "1,a/b"],
    ]);
    expect(thrown(() => parseBatchV1Write(headers))).toMatchObject({
      status: 422,
      message: "Invalid header 'x-reduct-time-5': timestamp 5 appears twice",
    });
  });

  it("431 when the request's headers exceed the batch budget", () => {
    const value = `1,a/b,k=${"v".repeat(4000)}`;
    const count = Math.ceil(MAX_BATCH_HEADER_BYTES / value.length) + 1;
    const headers = new Headers(Array.from({ length: count }, (_, i): [string, string] => [`x-reduct-time-${i}`, value]));
    expect(thrown(() => parseBatchV1Write(headers))).toMatchObject({
      status: 431,
      message: `Batched headers must be at most ${MAX_BATCH_HEADER_BYTES} bytes in total`,
    });
  });
});

describe("parseBatchV1Update", () => {
  it("sets, removes (empty value) and keeps numeric names literal", () => {
    const headers = new Headers([
      ["x-reduct-time-1000", "0,,x=z,a=,1=2"],
      ["x-reduct-time-2000", "0,,label1=value1,label2="],
    ]);
    expect(parseBatchV1Update(headers)).toEqual([
      { ts: 1000, set: { x: "z", 1: "2" }, remove: ["a"] },
      { ts: 2000, set: { label1: "value1" }, remove: ["label2"] },
    ]);
  });

  it("LEN and CT are read but ignored", () => {
    expect(parseBatchV1Update(one("10,text/plain,a=1"))).toEqual([{ ts: 1000, set: { a: "1" }, remove: [] }]);
  });

  it.each([
    ["0", "Invalid batched header"],
    ["x,,a=1", "Invalid content length"],
    ["0,,@a=1", "Label names must not start with '@': reserved for computed labels"],
    ['0,,a="1', "Invalid batched header"],
  ])("%j → 422 %s", (value, message) => {
    expect(thrown(() => parseBatchV1Update(one(value)))).toMatchObject({ status: 422, message });
  });
});

describe("parseBatchV1Remove", () => {
  it("reads only header names; values are ignored", () => {
    const headers = new Headers([
      ["x-reduct-time-3", ""],
      ["x-reduct-time-1", "garbage"],
      ["x-reduct-time-2", "0,"],
    ]);
    expect(parseBatchV1Remove(headers)).toEqual([1, 2, 3]);
  });

  it("still rejects a bad timestamp in a header name", () => {
    expect(thrown(() => parseBatchV1Remove(new Headers([["x-reduct-time-abc", ""]])))).toMatchObject({
      status: 422,
      message: "Invalid header 'x-reduct-time-abc': must be an unix timestamp in microseconds",
    });
  });
});

describe("renderV1Value / renderBatchV1", () => {
  it("renders `<LEN>,<CT>` without a trailing comma when there are no labels", () => {
    expect(renderV1Value({ size: 10, contentType: OCTET, labels: {} })).toBe("10,application/octet-stream");
  });

  it("quotes values with commas and sorts labels as rendered strings (not by name)", () => {
    const labels = { b: "1", a: "2", "a-b": "x", aa: "0", x: "[a,b]" };
    expect(renderV1Value({ size: 3, contentType: "text/plain", labels })).toBe('3,text/plain,a-b=x,a=2,aa=0,b=1,x="[a,b]"');
  });

  it("renders an empty-valued label as `k=`, as ReductStore does", () => {
    expect(renderV1Value({ size: 1, contentType: "a/b", labels: { a: "", b: "1" } })).toBe("1,a/b,a=,b=1");
  });

  const example: BatchRecordV1[] = [
    { ts: 1100, size: 10, contentType: "text/plain", labels: { x: "[a,b]" } },
    { ts: 1000, size: 10, contentType: OCTET, labels: {} },
  ];

  it("renders ReductStore's documented response example in timestamp order", () => {
    expect(renderBatchV1(example)).toEqual([
      ["x-reduct-time-1000", "10,application/octet-stream"],
      ["x-reduct-time-1100", '10,text/plain,x="[a,b]"'],
    ]);
  });

  it("round-trips ReductStore's documented example and a labelled batch through parseBatchV1Write", () => {
    const sorted = [...example].sort((a, b) => a.ts - b.ts);
    expect(parseBatchV1Write(new Headers(renderBatchV1(example)))).toEqual(sorted);
    const labelled: BatchRecordV1[] = [
      { ts: 0, size: 0, contentType: OCTET, labels: { label1: "value1", label2: "100", label3: "true" } },
      { ts: Number.MAX_SAFE_INTEGER, size: 7, contentType: "text/csv;charset=utf-8", labels: { tags: "a, b,c", k: 'x"y' } },
    ];
    expect(parseBatchV1Write(new Headers(renderBatchV1(labelled)))).toEqual(labelled);
  });
});

describe("renderRecordErrorV1", () => {
  it("renders x-reduct-error-<ts>: <status>,<message>", () => {
    expect(renderRecordErrorV1(1_000_000, { status: 409, message: "A record with timestamp 1000000 already exists" })).toEqual([
      "x-reduct-error-1000000",
      "409,A record with timestamp 1000000 already exists",
    ]);
    expect(renderRecordErrorV1(5, { status: 404, message: "Record 5 not found in entry b/e" })).toEqual([
      "x-reduct-error-5",
      "404,Record 5 not found in entry b/e",
    ]);
  });

  it("a message that is not a legal header value is percent-escaped, not replaced", () => {
    expect(renderRecordErrorV1(1, { status: 422, message: "Entry 'bü' is bad" })).toEqual([
      "x-reduct-error-1",
      "422,Entry 'b%C3%BC' is bad",
    ]);
  });
});
