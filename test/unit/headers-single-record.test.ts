// Single-record codecs: exact 422 messages, table-driven.
import { describe, expect, it } from "vitest";
import {
  assertBatchContentLength,
  DEFAULT_CONTENT_TYPE,
  LABEL_HEADER_OVERHEAD_BYTES,
  labelHeaderName,
  labelUpdateFromHeaders,
  MAX_LABEL_NAME_BYTES,
  MAX_LABEL_TOTAL_BYTES,
  MAX_LABEL_VALUE_BYTES,
  MAX_LABELS_PER_RECORD,
  parseTimestamp,
  readContentLength,
  readLabelHeaders,
  readOptionalContentLength,
  validateContentType,
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

const headersOf = (entries: Array<[string, string]>) => new Headers(entries);

describe("parseTimestamp", () => {
  it.each([
    ["0", 0],
    ["1", 1],
    ["1700000000000000", 1_700_000_000_000_000],
    ["007", 7],
    ["9007199254740991", Number.MAX_SAFE_INTEGER],
    ["00000000000000000000009007199254740991", Number.MAX_SAFE_INTEGER],
  ])("accepts %j", (text, value) => {
    expect(parseTimestamp(text)).toBe(value);
  });

  const invalid = [
    "-1",
    "+1",
    "1.5",
    "1e3",
    "abc",
    "",
    " 1",
    "1 ",
    "0x10",
    "١٢",
    "9007199254740992",
    "18446744073709551615",
    "18446744073709551616",
  ];
  it.each(invalid)("rejects %j with 422 'ts' must be an unix timestamp in microseconds", (text) => {
    expect(thrown(() => parseTimestamp(text))).toMatchObject({
      status: 422,
      message: "'ts' must be an unix timestamp in microseconds",
    });
  });

  it.each([null, undefined])("missing (%s) → 422 'ts' parameter is required", (text) => {
    expect(thrown(() => parseTimestamp(text))).toMatchObject({ status: 422, message: "'ts' parameter is required" });
  });

  it("names the parameter in both messages", () => {
    expect(thrown(() => parseTimestamp("x", "start")).message).toBe("'start' must be an unix timestamp in microseconds");
    expect(thrown(() => parseTimestamp(undefined, "stop")).message).toBe("'stop' parameter is required");
  });
});

describe("readLabelHeaders", () => {
  it("collects x-reduct-label-* headers (names lower-cased by HTTP) and ignores others", () => {
    const headers = headersOf([
      ["X-Reduct-Label-Room", "lab 1"],
      ["x-reduct-label-n", "100"],
      ["x-reduct-label-empty", ""],
      ["x-reduct-labels", "a,b"],
      ["x-reduct-time", "1"],
      ["content-type", "text/plain"],
    ]);
    expect(readLabelHeaders(headers)).toEqual({ room: "lab 1", n: "100", empty: "" });
  });

  it("refuses a label named __proto__ (a JavaScript client would drop it) and keeps constructor as own data", () => {
    expect(() => readLabelHeaders(headersOf([["x-reduct-label-__proto__", "x"]]))).toThrow("Label name '__proto__' is reserved");
    const labels = readLabelHeaders(headersOf([["x-reduct-label-constructor", "x"]]));
    expect(Object.entries(labels)).toEqual([["constructor", "x"]]);
  });

  it("returns an empty object without label headers", () => {
    expect(readLabelHeaders(new Headers())).toEqual({});
  });

  const latin1 = String.fromCharCode(0xe9);
  it.each([
    ["a byte > 0x7E", `caf${latin1}`],
    ["DEL (0x7F)", "a\x7fb"],
    ["a control char", "a\x01b"],
    ["a tab", "a\tb"],
    ["a byte 0xFF", String.fromCharCode(0xff)],
  ])("rejects a value with %s", (_, value) => {
    expect(thrown(() => readLabelHeaders(headersOf([["x-reduct-label-k", value]])))).toMatchObject({
      status: 422,
      message: "Label values for x-reduct-label-k must be valid UTF-8 strings",
    });
  });

  const many = (count: number, valueBytes: number): Array<[string, string]> =>
    Array.from({ length: count }, (_, i) => [`x-reduct-label-l${i}`, "v".repeat(valueBytes)]);

  it.each([
    ["an empty name", [["x-reduct-label-", "v"]], "Label names must not be empty"],
    [
      "a name over the cap",
      [[`x-reduct-label-${"n".repeat(MAX_LABEL_NAME_BYTES + 1)}`, "v"]],
      "Label names must be at most 256 bytes",
    ],
    [
      "a value over the cap",
      [["x-reduct-label-big", "v".repeat(MAX_LABEL_VALUE_BYTES + 1)]],
      "Label value of 'big' must be at most 4096 bytes",
    ],
    ["too many labels", many(MAX_LABELS_PER_RECORD + 1, 1), "A record can have at most 128 labels"],
    [
      "too many label bytes",
      many(3, MAX_LABEL_VALUE_BYTES - 2 - LABEL_HEADER_OVERHEAD_BYTES + 1),
      "Labels of a record must be at most 12288 bytes in total as response headers (names, values and 19 bytes per label)",
    ],
  ] as Array<[string, Array<[string, string]>, string]>)("rejects %s", (_, entries, message) => {
    expect(thrown(() => readLabelHeaders(headersOf(entries)))).toMatchObject({ status: 422, message });
  });

  it("accepts labels exactly at every cap", () => {
    expect(Object.keys(readLabelHeaders(headersOf(many(MAX_LABELS_PER_RECORD, 1))))).toHaveLength(MAX_LABELS_PER_RECORD);
    const name = "n".repeat(MAX_LABEL_NAME_BYTES);
    expect(readLabelHeaders(headersOf([[`x-reduct-label-${name}`, "v".repeat(MAX_LABEL_VALUE_BYTES)]]))[name]).toHaveLength(
      MAX_LABEL_VALUE_BYTES,
    );
    // 3 header lines of (15 + 2 + 4075 + 4) bytes = 12288 bytes total
    const atCap = MAX_LABEL_VALUE_BYTES - 2 - LABEL_HEADER_OVERHEAD_BYTES;
    expect(Object.keys(readLabelHeaders(headersOf(many(3, atCap))))).toHaveLength(3);
    expect(3 * (2 + atCap + LABEL_HEADER_OVERHEAD_BYTES)).toBe(MAX_LABEL_TOTAL_BYTES);
  });
});

describe("labelHeaderName", () => {
  it.each(["room", "label1", "x-y_z.1", "!#$%&'*+-.^_`|~", "Upper"])("%j can be a header name", (name) => {
    expect(labelHeaderName(name)).toBe(`x-reduct-label-${name}`);
    expect(() => new Headers([[labelHeaderName(name)!, "v"]])).not.toThrow();
  });

  it.each(["x y", "a,b", "a=b", "a/b", 'q"', "@x", "a:b"])("%j cannot (Headers would throw)", (name) => {
    expect(labelHeaderName(name)).toBeNull();
    expect(() => new Headers([[`x-reduct-label-${name}`, "v"]])).toThrow(TypeError);
  });

  // workerd accepts these as header names (UTF-8 quirk / empty suffix) but they are not tokens.
  it.each(["", "é"])("%j is refused too", (name) => {
    expect(labelHeaderName(name)).toBeNull();
  });
});

describe("label update helpers", () => {
  it("labelUpdateFromHeaders: empty value removes, others set", () => {
    expect(labelUpdateFromHeaders({ x: "z", b: "", a: "" })).toEqual({ set: { x: "z" }, remove: ["a", "b"] });
  });
});

describe("readContentLength / readOptionalContentLength", () => {
  it.each([
    [[["content-length", "27"]], 27],
    [[["x-reduct-content-length", "5"]], 5],
    [[["content-length", "0"]], 0],
    [
      [
        ["content-length", "3"],
        ["x-reduct-content-length", "9"],
      ],
      3,
    ],
    [
      [
        ["content-length", "3"],
        ["x-reduct-content-length", "abc"],
      ],
      3,
    ],
  ] as Array<[Array<[string, string]>, number]>)("%j → %d", (entries, value) => {
    expect(readContentLength(headersOf(entries))).toBe(value);
    expect(readOptionalContentLength(headersOf(entries))).toBe(value);
  });

  it("neither header → 422 content-length header is required (optional form: null)", () => {
    expect(thrown(() => readContentLength(new Headers()))).toMatchObject({
      status: 422,
      message: "content-length header is required",
    });
    expect(readOptionalContentLength(new Headers())).toBeNull();
  });

  it.each([
    ["content-length", "abc"],
    ["content-length", "-1"],
    ["content-length", "1.5"],
    ["content-length", ""],
    ["content-length", "9007199254740992"],
    ["x-reduct-content-length", "abc"],
    ["x-reduct-content-length", "1e3"],
    ["x-reduct-content-length", "+5"],
  ])("%s: %j → 422 <header> header must be a number", (header, value) => {
    const message = `${header} header must be a number`;
    expect(thrown(() => readContentLength(headersOf([[header, value]])))).toMatchObject({ status: 422, message });
    expect(thrown(() => readOptionalContentLength(headersOf([[header, value]])))).toMatchObject({ status: 422, message });
  });
});

describe("assertBatchContentLength", () => {
  const records = [{ size: 9 }, { size: 9 }, { size: 9 }];
  it("passes without a declared length or when it equals the sum", () => {
    expect(() => assertBatchContentLength(null, records)).not.toThrow();
    expect(() => assertBatchContentLength(27, records)).not.toThrow();
    expect(() => assertBatchContentLength(0, [])).not.toThrow();
  });
  it.each([26, 28, 0])("declared %d ≠ 27 → 422", (declared) => {
    expect(thrown(() => assertBatchContentLength(declared, records))).toMatchObject({
      status: 422,
      message: "content-length header does not match the sum of the content-lengths in the headers",
    });
  });
});

describe("validateContentType", () => {
  it.each([null, undefined, "", "   "])("absent/blank %j → application/octet-stream", (value) => {
    expect(validateContentType(value)).toBe(DEFAULT_CONTENT_TYPE);
  });

  it.each([
    "text/plain",
    "application/octet-stream",
    "image/svg+xml",
    "text/plain;charset=UTF-8",
    "text/plain; charset=utf-8",
    "text/plain ; charset=utf-8",
    'text/plain; charset="utf-8"',
    'multipart/form-data; boundary="a b;c"',
    "application/vnd.api+json; q=1; x=y",
    "text/plain;",
    "*/*",
  ])("accepts %j verbatim", (value) => {
    expect(validateContentType(value)).toBe(value);
  });

  it("trims surrounding whitespace", () => {
    expect(validateContentType("  text/plain  ")).toBe("text/plain");
  });

  it.each([
    ["text", "missing '/' between type and subtype in 'text'"],
    ["text/", "invalid subtype ''"],
    ["/plain", "invalid type ''"],
    ["te xt/plain", "invalid type 'te xt'"],
    ["text/pl ain", "invalid subtype 'pl ain'"],
    ["text/plain/x", "invalid subtype 'plain/x'"],
    ["text/plain; charset", "parameter 'charset' has no value"],
    ["text/plain; =utf-8", "invalid parameter name ''"],
    ["text/plain; char set=utf-8", "invalid parameter name 'char set'"],
    ["text/plain; charset=", "invalid parameter value ''"],
    ["text/plain; charset=ut(f", "invalid parameter value 'ut(f'"],
    ['text/plain; charset="utf-8', "unterminated quoted parameter value"],
    ['text/plain; charset="utf-8"x', "unexpected 'x' after a parameter"],
    ["text/plain; a=b c", "unexpected 'c' after a parameter"],
    ["text/plain, text/html", "',' is not allowed"],
    ['text/plain; x="a,b"', "',' is not allowed"],
    [`text/${String.fromCharCode(0xe9)}`, "only visible ASCII characters are allowed"],
    ["text/pl\x01ain", "only visible ASCII characters are allowed"],
  ])("%j → 422 Malformed content-type header: %s", (value, reason) => {
    expect(thrown(() => validateContentType(value))).toMatchObject({
      status: 422,
      message: `Malformed content-type header: ${reason}`,
    });
  });
});
