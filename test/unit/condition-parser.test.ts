/**
 * Parsing of `when`: every 422 message the parser produces, the three pair forms,
 * literals, directives with their typed values, and the safety limits on depth and size.
 */
import { describe, expect, it } from "vitest";
import { ConditionError, createEvaluator, MAX_DEPTH, MAX_NODES, parseWhen } from "../../src/query/condition";

function parseError(json: unknown): ConditionError {
  try {
    parseWhen(json);
  } catch (error) {
    if (error instanceof ConditionError) return error;
    throw error;
  }
  throw new Error(`parseWhen accepted ${JSON.stringify(json)}`);
}

function selects(json: unknown, labels: Record<string, string> = {}, timestamp = 0): boolean {
  return createEvaluator(parseWhen(json), { strict: true }).evaluate({ timestamp, labels });
}

/** `{"$not": {"$not": … true}}` with `levels` nested objects (the top-level object is level 1). */
function nestedNots(levels: number): unknown {
  let json: unknown = true;
  for (let i = 0; i < levels; i++) json = { $not: json };
  return json;
}

describe("parseWhen rejects malformed conditions with the reference's 422 messages", () => {
  const cases: Array<[string, unknown, string]> = [
    ["unknown operator", { $xx: [true, true] }, "Operator '$xx' not supported"],
    ["unknown operator, unary", { $regex: "a" }, "Operator '$regex' not supported"],
    ["unknown operator in object notation", { "&a": { $like: 1 } }, "Operator '$like' not supported"],
    ["unknown directive", { "#foo": 1 }, "Directive '#foo' is not supported"],
    ["array operand", { "&label": { $in: [10, 20] } }, "Array type is not supported: [10,20]"],
    ["nested array operand", { $and: [[true]] }, "Array type is not supported: [true]"],
    ["top-level array", [1, "a"], 'Array type is not supported: [1,"a"]'],
    ["null operand", { "&ref": { $and: null } }, "Null type is not supported: null"],
    ["null in operand list", { $and: [true, null] }, "Null type is not supported: null"],
    ["top-level null", null, "Null type is not supported: null"],
    ["object notation with two keys", { "&ref": { $and: true, x: "y" } }, "Object notation must have exactly one operator"],
    ["object notation with no key", { "&ref": {} }, "Object notation must have exactly one operator"],
    ["operator without $", { and: [true, true] }, "Operator 'and' must start with '$'"],
    ["scalar pair without $", { abc: 1 }, "Operator 'abc' must start with '$'"],
    ["label key with scalar", { "&x": 5 }, "Operator '&x' must start with '$'"],
    ["label key with array", { "&x": [1, 2] }, "Operator '&x' must start with '$'"],
    ["nested directive", { $and: [{ "#ctx_before": 1 }] }, "Operator '#ctx_before' must start with '$'"],
    [
      "unknown $ key in object notation",
      { $plugin: { $eq: "value" } },
      "Unknown '$' literal '$plugin'; use '$$' to escape a string value",
    ],
    [
      "unknown $ string operand",
      { $eq: ["$plugin", "$plugin"] },
      "Unknown '$' literal '$plugin'; use '$$' to escape a string value",
    ],
    [
      "operator literal with operands missing",
      { $gt: ["$eq", 1] },
      "Unknown '$' literal '$eq'; use '$$' to escape a string value",
    ],
    ["unknown cast type", { $cast: ["&x", "bigint"] }, "Unknown type 'bigint'"],
    ["unknown cast type, object notation", { "&x": { $cast: "text" } }, "Unknown type 'text'"],
    ["$div by constant 0", { $div: ["&x", 0] }, "Cannot divide by zero"],
    ["$div by constant 0.0", { $div: ["&x", 0.0] }, "Cannot divide by zero"],
    ["$div by constant false", { $div: ["&x", false] }, "Cannot divide by zero"],
    ["$div_num by constant 0", { $div_num: ["&x", 0] }, "Cannot divide by zero"],
    ["$div_num by constant 0.5 (truncates to 0)", { $div_num: ["&x", 0.5] }, "Cannot divide by zero"],
    ["$rem by constant 0", { $rem: ["&x", 0] }, "Cannot divide by zero"],
    ["invalid time zone", { $hour: ["$timestamp", "Mars/Olympus"] }, "Invalid timezone: 'Mars/Olympus'"],
    ["empty time zone", { $day: ["$timestamp", ""] }, "Invalid timezone: ''"],
    ["non-string time zone", { $hour: ["$timestamp", 5] }, "$hour requires timezone to be a string"],
    ["$each_n of 0", { $each_n: 0 }, "Value '0' is not a valid operand for $each_n"],
    ["$each_n not a number", { $each_n: "abc" }, "Value 'abc' could not be parsed as integer"],
    ["$limit not a number", { $limit: "abc" }, "Value 'abc' could not be parsed as integer"],
    ["$each_t not a number", { $each_t: "abc" }, "Value 'abc' could not be parsed as float"],
    ["$gate span not a number", { $gate: ["abc", true] }, "Value 'abc' could not be parsed as float"],
    [
      "integer beyond 2^53",
      { $eq: [9007199254740992, 1] },
      "Integer 9007199254740992 is outside the safe range (±9007199254740991)",
    ],
    ["huge integral number", { $eq: ["&x", 1e300] }, "Integer 1e+300 is outside the safe range (±9007199254740991)"],
    ["non-JSON value", { $eq: ["&x", undefined] }, "Unsupported JSON value of type undefined"],
    ["non-JSON number", { $eq: ["&x", Number.NaN] }, "Unsupported JSON number: NaN"],
    ["#ext without extensions", { "#ext": { select: {} } }, "Directive '#ext' is not supported: no extensions are installed"],
    ["#ext as null", { "#ext": null }, "Directive '#ext' cannot be null"],
  ];
  it.each(cases)("%s", (_, json, message) => {
    const error = parseError(json);
    expect(error.status).toBe(422);
    expect(error.message).toBe(message);
  });
});

describe("arity is checked at parse time", () => {
  const cases: Array<[unknown, string]> = [
    [{ $eq: [1] }, "$eq requires exactly two operands"],
    [{ $ne: [1, 2, 3] }, "$ne requires exactly two operands"],
    [{ $gt: 1 }, "$gt requires exactly two operands"],
    [{ $gte: [] }, "$gte requires exactly two operands"],
    [{ $lt: [1] }, "$lt requires exactly two operands"],
    [{ $lte: [1] }, "$lte requires exactly two operands"],
    [{ $in: ["&a"] }, "$in operator requires at least two operands"],
    [{ $nin: [] }, "$nin operator requires at least two operands"],
    [{ $exists: [] }, "$exists requires at least one operand"],
    [{ $has: [] }, "$has requires at least one operand"],
    [{ $cast: ["&a"] }, "$cast requires exactly two operands"],
    [{ $ref: [] }, "$ref requires exactly one operand"],
    [{ $timestamp: 5 }, "$timestamp requires no operands"],
    [{ $id: [1] }, "$id requires no operands"],
    [{ $sub: [1] }, "$sub requires exactly two operands"],
    [{ $div: [1] }, "$div requires exactly two operands"],
    [{ $div_num: [1, 2, 3] }, "$div_num requires exactly two operands"],
    [{ $rem: [1] }, "$rem requires exactly two operands"],
    [{ $abs: [1, 2] }, "$abs requires exactly one operand"],
    [{ $contains: ["a"] }, "$contains requires exactly two operands"],
    [{ $starts_with: ["a"] }, "$starts_with requires exactly two operands"],
    [{ $ends_with: ["a", "b", "c"] }, "$ends_with requires exactly two operands"],
    [{ $year: [] }, "$year requires one or two operands"],
    [{ $month: [1, "UTC", 3] }, "$month requires one or two operands"],
    [{ $day: [] }, "$day requires one or two operands"],
    [{ $hour: [] }, "$hour requires one or two operands"],
    [{ $minute: [] }, "$minute requires one or two operands"],
    [{ $second: [] }, "$second requires one or two operands"],
    [{ $weekday: [] }, "$weekday requires one or two operands"],
    [{ $each_n: [] }, "$each_n requires exactly one operand"],
    [{ $each_t: [1, 2] }, "$each_t requires exactly one operand"],
    [{ $limit: [] }, "$limit requires exactly one operand"],
    [{ $gate: ["1s"] }, "$gate requires exactly two operands"],
  ];
  it.each(cases)("%j", (json, message) => {
    expect(parseError(json)).toMatchObject({ status: 422, message });
  });
});

describe("pair forms and literals", () => {
  const cases: Array<[string, unknown, Record<string, string>, number, boolean]> = [
    ["object notation", { "&score": { $gt: 10 } }, { score: "20" }, 0, true],
    ["array notation", { $gt: ["&score", 10] }, { score: "5" }, 0, false],
    ["unary shorthand, scalar", { $not: "&flag" }, { flag: "false" }, 0, true],
    ["unary shorthand, nested condition", { $not: { "&score": { $gt: 10 } } }, { score: "20" }, 0, false],
    ["unary shorthand, nested array notation", { $not: { $eq: ["&score", 20] } }, { score: "20" }, 0, false],
    ["nested object keys are ANDed", { $or: [{ "&a": { $eq: 1 }, "&b": { $eq: 2 } }] }, { a: "1", b: "3" }, 0, false],
    ["nested object keys are ANDed (true)", { $or: [{ "&a": { $eq: 1 }, "&b": { $eq: 2 } }] }, { a: "1", b: "2" }, 0, true],
    ["top-level pairs are ANDed", { "&a": { $eq: 1 }, $gt: ["&b", 1] }, { a: "1", b: "1" }, 0, false],
    ["$timestamp key in object notation", { $timestamp: { $gte: 1000 } }, {}, 1000, true],
    ["$timestamp as string operand", { $gte: ["$timestamp", 1000] }, {}, 999, false],
    ["$id alias", { $id: { $eq: 7 } }, {}, 7, true],
    ["$$ escapes a string", { $eq: ["&key", "$$system"] }, { key: "$system" }, 0, true],
    ["$$ in object-notation key", { $$plugin: { $eq: "$$plugin" } }, {}, 0, true],
    ["duration literal operand", { $eq: ["1h", 3600000000] }, {}, 0, true],
    ["duration literal never equals a label string", { "&d": { $eq: "5m" } }, { d: "5m" }, 0, false],
    ["fractional duration stays a string", { "&d": { $eq: "1.5s" } }, { d: "1.5s" }, 0, true],
    ["JSON string is never numeric", { "&n": { $eq: "10" } }, { n: "10" }, 0, false],
    ["plain string key is a constant", { abc: { $eq: "abc" } }, {}, 0, true],
    ["empty when matches everything", {}, {}, 0, true],
    ["top-level scalar true", true, {}, 0, true],
    ["top-level scalar 0", 0, {}, 0, false],
    ["top-level reference", "&flag", { flag: "true" }, 0, true],
    ["negative zero is Int 0", { $eq: [-0, 0] }, {}, 0, true],
  ];
  it.each(cases)("%s", (_, json, labels, timestamp, expected) => {
    expect(selects(json, labels, timestamp)).toBe(expected);
  });
});

describe("directives", () => {
  const valid: Array<[unknown, object]> = [
    [{ "#ctx_before": 2 }, { ctxBefore: { kind: "records", count: 2 } }],
    [{ "#ctx_before": [3] }, { ctxBefore: { kind: "records", count: 3 } }],
    [{ "#ctx_before": "1h" }, { ctxBefore: { kind: "duration", us: 3600000000 } }],
    [{ "#ctx_after": "2ms" }, { ctxAfter: { kind: "duration", us: 2000 } }],
    [{ "#ctx_after": 0 }, { ctxAfter: { kind: "records", count: 0 } }],
    [{ "#select_labels": "a" }, { selectLabels: ["a"] }],
    [{ "#select_labels": ["label1", "label2"] }, { selectLabels: ["label1", "label2"] }],
    [{ "#select_labels": ["1h"] }, { selectLabels: ["1h"] }],
    [{ "#batch_size": 2048 }, { batchSizeBytes: 2048 }],
    [{ "#batch_size": "1MB" }, { batchSizeBytes: 1000000 }],
    [{ "#batch_size": "1 KiB" }, { batchSizeBytes: 1024 }],
    [{ "#batch_size": "1.5kb" }, { batchSizeBytes: 1500 }],
    [{ "#batch_metadata_size": "512" }, { batchMetadataSizeBytes: 512 }],
    [{ "#batch_records": 100 }, { batchRecords: 100 }],
    [{ "#batch_timeout": 10 }, { batchTimeoutUs: 10000000 }],
    [{ "#batch_timeout": "200ms" }, { batchTimeoutUs: 200000 }],
    [{ "#record_timeout": "1s" }, { recordTimeoutUs: 1000000 }],
    [{ "#io_timeout": [30] }, { ioTimeoutUs: 30000000 }],
  ];
  it.each(valid)("%j", (json, expected) => {
    expect(parseWhen(json).directives).toEqual(expected);
  });

  it("directives do not filter records", () => {
    const parsed = parseWhen({ "#ctx_before": 5, "#select_labels": ["a"], "&a": { $eq: 1 } });
    const evaluator = createEvaluator(parsed, { strict: true });
    expect(evaluator.evaluate({ timestamp: 0, labels: { a: "1" } })).toBe(true);
    expect(evaluator.evaluate({ timestamp: 1, labels: { a: "2" } })).toBe(false);
  });

  it("directives are checked before the condition", () => {
    expect(parseError({ $xx: 1, "#nope": 1 }).message).toBe("Directive '#nope' is not supported");
  });

  const invalid: Array<[unknown, string]> = [
    [{ "#ctx_before": null }, "Directive '#ctx_before' cannot be null"],
    [{ "#select_labels": null }, "Directive '#select_labels' cannot be null"],
    [{ "#ctx_before": -1 }, "#ctx_before must be non-negative"],
    [{ "#ctx_after": "-1s" }, "#ctx_after must be non-negative"],
    [{ "#ctx_before": "abc" }, "#ctx_before must be an integer or duration"],
    [{ "#ctx_before": 1.5 }, "#ctx_before must be an integer or duration"],
    [{ "#ctx_before": true }, "#ctx_before must be an integer or duration"],
    [{ "#ctx_after": { a: 1 } }, "#ctx_after must be an integer or duration"],
    [{ "#ctx_before": [1, 2] }, "#ctx_before must be a single value"],
    [{ "#ctx_after": [] }, "#ctx_after must be a single value"],
    [{ "#select_labels": [] }, "#select_labels must contain at least one label"],
    [{ "#select_labels": [1] }, "#select_labels must contain only string values"],
    [{ "#select_labels": ["a", { b: 1 }] }, "#select_labels must contain only string values"],
    [{ "#select_labels": true }, "#select_labels must contain only string values"],
    [{ "#select_labels": Array.from({ length: 1001 }, (_, i) => `l${i}`) }, "#select_labels must contain at most 1000 labels"],
    [{ "#batch_size": 1.5 }, "#batch_size must be a positive integer or string representing a positive integer"],
    [{ "#batch_size": -1 }, "#batch_size must be a positive integer or string representing a positive integer"],
    [{ "#batch_size": "abc" }, "#batch_size must be a positive integer or string: invalid size 'abc'"],
    [{ "#batch_metadata_size": "1XB" }, "#batch_metadata_size must be a positive integer or string: invalid size '1XB'"],
    [{ "#batch_size": [1, 2] }, "#batch_size must be a single integer or string value"],
    [{ "#batch_size": "99999999999PB" }, "#batch_size is too large"],
    [{ "#batch_records": -1 }, "#batch_records must be a positive integer"],
    [{ "#batch_records": "10" }, "#batch_records must be a positive integer"],
    [{ "#batch_records": [1, 2] }, "#batch_records must be a single integer value"],
    [{ "#batch_timeout": "abc" }, "#batch_timeout must be a positive integer or duration"],
    [{ "#batch_timeout": 1.5 }, "#batch_timeout must be a positive integer or duration"],
    [{ "#record_timeout": "-1s" }, "#record_timeout must be non-negative"],
    [{ "#io_timeout": [1, 2] }, "#io_timeout must be a single integer or duration value"],
    [{ "#batch_timeout": 9007199254740991 }, "#batch_timeout is too large"],
    [{ "#ctx_before": "106751991d" }, "#ctx_before is too large"],
  ];
  it.each(invalid.map(([json, message]) => ({ json, message })))("$message", ({ json, message }) => {
    expect(parseError(json)).toMatchObject({ status: 422, message });
  });
});

describe("safety limits", () => {
  it(`accepts ${MAX_DEPTH} levels of nesting and rejects ${MAX_DEPTH + 1}`, () => {
    expect(selects(nestedNots(MAX_DEPTH))).toBe(true);
    expect(parseError(nestedNots(MAX_DEPTH + 1))).toMatchObject({
      status: 422,
      message: "Condition is nested too deeply (more than 32 levels)",
    });
  });

  it("rejects very deep arrays and objects without overflowing the stack", () => {
    let arrays: unknown = 1;
    let objects: unknown = true;
    for (let i = 0; i < 100_000; i++) {
      arrays = [arrays];
      objects = { $and: [objects] };
    }
    expect(parseError({ $and: arrays }).status).toBe(422);
    expect(parseError(objects).message).toBe("Condition is nested too deeply (more than 32 levels)");
  });

  it(`accepts ${MAX_NODES} nodes and rejects ${MAX_NODES + 1}`, () => {
    const operands = (count: number) => Array.from({ length: count }, () => true);
    // the $and itself is one node, each operand another
    expect(selects({ $and: operands(MAX_NODES - 1) })).toBe(true);
    expect(parseError({ $and: operands(MAX_NODES) })).toMatchObject({
      status: 422,
      message: "Condition is too large (more than 1000 nodes)",
    });
  });

  it("rejects a huge flat condition quickly", () => {
    const json = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`&l${i}`, { $eq: i }]));
    expect(parseError(json).message).toBe("Condition is too large (more than 1000 nodes)");
  });

  it("bounds the JSON echoed in error messages", () => {
    const message = parseError({ "&a": { $eq: Array.from({ length: 10_000 }, (_, i) => i) } }).message;
    expect(message.startsWith("Array type is not supported: [0,1,2,")).toBe(true);
    expect(message.length).toBeLessThan(300);
  });
});
