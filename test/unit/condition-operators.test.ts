/**
 * Every operator of the `when` language (aliases included) with at least one selecting and one non-selecting
 * case, the evaluation errors with their statuses, the arithmetic result types, and every example
 * of the worked examples. Table-driven; each case runs through parseWhen + a strict evaluator.
 */
import { describe, expect, it } from "vitest";
import { ConditionError, createEvaluator, OPERATOR_NAMES, parseWhen } from "../../src/query/condition";
import {
  absolute,
  add,
  divide,
  divideIntegers,
  multiply,
  remainder,
  subtract,
} from "../../src/query/condition/operators/arithmetic";
import { castValue } from "../../src/query/condition/operators/misc";
import { durationValue, FALSE, floatValue, intValue, stringValue, TRUE, type Value } from "../../src/query/condition/values";

const LABELS: Record<string, string> = {
  score: "20",
  name: "camera-01",
  flag: "true",
  off: "false",
  ratio: "0.5",
  zero: "0",
  neg: "-7",
  dur: "5m",
  big: "9223372036854775807",
  nan: "NaN",
  empty: "",
  key: "$system",
};

/** 2024-01-01T00:00:00.123456Z, a Monday. */
const NEW_YEAR_US = 1704067200123456;

function select(when: unknown, timestamp = 0, labels: Record<string, string> = LABELS): boolean {
  return createEvaluator(parseWhen(when), { strict: true }).evaluate({ timestamp, labels });
}

type Case = [op: string, when: unknown, expected: boolean, timestamp?: number];

const OPERATOR_CASES: Case[] = [
  // comparison
  ["$eq", { "&score": { $eq: 20 } }, true],
  ["$eq", { "&score": { $eq: "20" } }, false],
  ["$eq", { "&ratio": { $eq: 0.5 } }, true],
  ["$eq", { "&flag": { $eq: true } }, true],
  ["$eq", { "&flag": { $eq: 1 } }, true],
  ["$eq", { "&name": { $eq: "camera-01" } }, true],
  ["$eq", { $eq: ["&nan", "&nan"] }, false],
  ["$eq", { $eq: ["1h", 3600000000] }, true],
  ["$ne", { "&score": { $ne: 10 } }, true],
  ["$ne", { "&score": { $ne: 20 } }, false],
  ["$ne", { "&score": { $ne: "20" } }, true],
  ["$gt", { "&score": { $gt: 10 } }, true],
  ["$gt", { "&score": { $gt: 20 } }, false],
  ["$gt", { "&name": { $gt: 5 } }, false],
  ["$gt", { "&name": { $gt: "camera-00" } }, true],
  ["$gt", { $gt: ["1h", "59m"] }, true],
  ["$gt", { "&flag": { $gt: 0 } }, true],
  ["$gte", { "&score": { $gte: 20 } }, true],
  ["$gte", { "&score": { $gte: 20.5 } }, false],
  ["$lt", { "&score": { $lt: 21 } }, true],
  ["$lt", { "&score": { $lt: 20 } }, false],
  ["$lt", { "&nan": { $lt: 1 } }, false],
  ["$lte", { "&score": { $lte: 20 } }, true],
  ["$lte", { "&score": { $lte: 19 } }, false],
  ["$lte", { "&name": { $lte: 1 } }, false],
  // logical
  ["$and", { $and: [true, "&flag"] }, true],
  ["$and", { $and: [true, "&off"] }, false],
  ["$and", { $and: [] }, true],
  ["$and", { "&flag": { $and: true } }, true],
  ["$all_of", { $all_of: [1, "x", 0.1] }, true],
  ["$all_of", { $all_of: [1, "&empty"] }, false],
  ["$or", { $or: [false, "&flag"] }, true],
  ["$or", { $or: [false, 0, ""] }, false],
  ["$or", { $or: [] }, false],
  ["$any_of", { $any_of: ["&zero", "&score"] }, true],
  ["$any_of", { $any_of: ["&zero", "&off"] }, false],
  ["$not", { $not: "&off" }, true],
  ["$not", { $not: "&flag" }, false],
  ["$not", { $not: { "&score": { $gt: 100 } } }, true],
  ["$none_of", { $none_of: [false, 0, ""] }, true],
  ["$none_of", { $none_of: [false, 1] }, false],
  ["$xor", { $xor: [true, false] }, true],
  ["$xor", { $xor: [true, true] }, false],
  ["$one_of", { $one_of: [false, false, 1] }, true],
  ["$one_of", { $one_of: [] }, false],
  ["$in", { $in: ["&score", 10, 20] }, true],
  ["$in", { $in: ["&score", 10, 30] }, false],
  ["$in", { $in: ["&score", "20"] }, false],
  ["$in", { $in: [{ "&key": { $cast: "string" } }, "meta-1", "$$system"] }, true],
  ["$nin", { $nin: ["&score", 10, 30] }, true],
  ["$nin", { $nin: ["&score", 20] }, false],
  // misc
  ["$exists", { $exists: ["score", "name"] }, true],
  ["$exists", { $exists: ["score", "missing"] }, false],
  ["$has", { $has: "flag" }, true],
  ["$has", { $has: "constructor" }, false],
  ["$has", { $has: "__proto__" }, false],
  ["$cast", { $eq: [{ $cast: ["&score", "string"] }, "20"] }, true],
  ["$cast", { $eq: [{ $cast: ["&ratio", "int"] }, 0] }, true],
  ["$cast", { $eq: [{ $cast: ["&score", "float"] }, 20.5] }, false],
  ["$cast", { $cast: ["&zero", "bool"] }, false],
  ["$cast", { $eq: [{ $add: [{ $cast: [{ $cast: [5405000000, "duration"] }, "string"] }, "!"] }, "1h 30m 5s!"] }, true],
  ["$cast", { $eq: [{ $cast: ["&dur", "duration"] }, 300000000] }, true],
  ["$ref", { $eq: [{ $ref: "score" }, 20] }, true],
  ["$ref", { $eq: [{ $ref: { $add: ["sco", "re"] } }, 21] }, false],
  ["$timestamp", { $timestamp: { $gte: 1000 } }, true, 1000],
  ["$timestamp", { $timestamp: { $gte: 1000 } }, false, 999],
  ["$id", { $gte: ["$id", 5] }, true, 5],
  ["$id", { $lt: ["$id", 5] }, false, 5],
  // arithmetic
  ["$add", { $eq: [{ $add: ["&score", 1, 0.5] }, 21.5] }, true],
  ["$add", { $eq: [{ $add: [] }, 0] }, true],
  ["$add", { $eq: [{ $add: ["a", "b"] }, "ab"] }, true],
  ["$add", { $gt: [{ $add: [1, 1] }, 2] }, false],
  ["$sub", { $eq: [{ $sub: ["&score", 5] }, 15] }, true],
  ["$sub", { $eq: [{ $sub: [5, "&score"] }, 15] }, false],
  ["$mult", { $eq: [{ $mult: ["&score", 2, 0.5] }, 20] }, true],
  ["$mult", { $eq: [{ $mult: [] }, 0] }, true],
  ["$mult", { $eq: [{ $mult: [2, 3] }, 5] }, false],
  ["$div", { $eq: [{ $div: [3, 2] }, 1.5] }, true],
  ["$div", { $eq: [{ $div: [3, 2] }, 1] }, false],
  ["$div_num", { $eq: [{ $div_num: [7, 2] }, 3] }, true],
  ["$div_num", { $eq: [{ $div_num: [-7, 2] }, -3] }, true],
  ["$div_num", { $eq: [{ $div_num: [-7, 2] }, -4] }, false],
  ["$rem", { $eq: [{ $rem: [-10, 6] }, -4] }, true],
  ["$rem", { $eq: [{ $rem: [7.5, 2] }, 1.5] }, true],
  ["$rem", { $eq: [{ $rem: [10, 6] }, 5] }, false],
  ["$abs", { $eq: [{ $abs: "&neg" }, 7] }, true],
  ["$abs", { $eq: [{ $abs: -1.5 }, 1.5] }, true],
  ["$abs", { $eq: [{ $abs: -7 }, -7] }, false],
  // string
  ["$contains", { $contains: ["&name", "era"] }, true],
  ["$contains", { $contains: ["&name", "x"] }, false],
  ["$contains", { $contains: ["&score", 0] }, true],
  ["$starts_with", { $starts_with: ["&name", "cam"] }, true],
  ["$starts_with", { $starts_with: ["&name", "era"] }, false],
  ["$ends_with", { $ends_with: ["&name", "-01"] }, true],
  ["$ends_with", { $ends_with: ["&name", "-02"] }, false],
  ["$ends_with", { $ends_with: [{ $cast: ["1h", "string"] }, "h"] }, true],
  // date/time
  ["$year", { $eq: [{ $year: "$timestamp" }, 2024] }, true, NEW_YEAR_US],
  ["$year", { $eq: [{ $year: ["$timestamp", "America/New_York"] }, 2023] }, true, NEW_YEAR_US],
  ["$year", { $eq: [{ $year: "$timestamp" }, 2023] }, false, NEW_YEAR_US],
  ["$month", { $eq: [{ $month: "$timestamp" }, 1] }, true, NEW_YEAR_US],
  ["$month", { $eq: [{ $month: ["$timestamp", "America/New_York"] }, 12] }, true, NEW_YEAR_US],
  ["$month", { $eq: [{ $month: "$timestamp" }, 12] }, false, NEW_YEAR_US],
  ["$day", { $eq: [{ $day: "$timestamp" }, 1] }, true, NEW_YEAR_US],
  ["$day", { $eq: [{ $day: ["$timestamp", "America/New_York"] }, 31] }, true, NEW_YEAR_US],
  ["$day", { $eq: [{ $day: "$timestamp" }, 31] }, false, NEW_YEAR_US],
  ["$hour", { $eq: [{ $hour: "$timestamp" }, 0] }, true, NEW_YEAR_US],
  ["$hour", { $eq: [{ $hour: ["$timestamp", "Europe/Berlin"] }, 1] }, true, NEW_YEAR_US],
  ["$hour", { $eq: [{ $hour: ["$timestamp", "Asia/Kolkata"] }, 5] }, true, NEW_YEAR_US],
  ["$hour", { $eq: [{ $hour: ["$timestamp", "Europe/Berlin"] }, 0] }, false, NEW_YEAR_US],
  ["$minute", { $eq: [{ $minute: "$timestamp" }, 1] }, true, NEW_YEAR_US + 90_000_000],
  ["$minute", { $eq: [{ $minute: ["$timestamp", "Asia/Kolkata"] }, 30] }, true, NEW_YEAR_US],
  ["$minute", { $eq: [{ $minute: "$timestamp" }, 1] }, false, NEW_YEAR_US],
  ["$second", { $eq: [{ $second: "$timestamp" }, 5] }, true, NEW_YEAR_US + 5_500_000],
  ["$second", { $eq: [{ $second: ["$timestamp", "Europe/Berlin"] }, 0] }, true, NEW_YEAR_US],
  ["$second", { $eq: [{ $second: "$timestamp" }, 6] }, false, NEW_YEAR_US + 5_500_000],
  ["$weekday", { $eq: [{ $weekday: "$timestamp" }, 0] }, true, NEW_YEAR_US],
  ["$weekday", { $eq: [{ $weekday: ["$timestamp", "America/New_York"] }, 6] }, true, NEW_YEAR_US],
  ["$weekday", { $eq: [{ $weekday: "$timestamp" }, 6] }, false, NEW_YEAR_US],
  ["$weekday", { $eq: [{ $weekday: "$timestamp" }, 3] }, true, 0],
  // stateful, first evaluation only (sequences are in condition-evaluator.test.ts)
  ["$each_n", { $each_n: 1 }, true],
  ["$each_n", { $each_n: 2 }, false],
  ["$each_t", { $each_t: 0 }, true],
  ["$each_t", { $each_t: "1s" }, false],
  ["$limit", { $limit: 1 }, true],
  ["$limit", { $limit: 0 }, false],
  ["$gate", { $gate: ["10s", "&flag"] }, true],
  ["$gate", { $gate: ["10s", "&off"] }, false],
];

describe("every operator selects and rejects", () => {
  it.each(OPERATOR_CASES)("%s: %j → %s", (_, when, expected, timestamp) => {
    expect(select(when, timestamp ?? 0)).toBe(expected);
  });

  it("covers every registered operator with a true and a false case", () => {
    for (const name of OPERATOR_NAMES) {
      const outcomes = new Set(OPERATOR_CASES.filter(([op]) => op === name).map(([, , expected]) => expected));
      expect([name, [...outcomes].sort()]).toEqual([name, [false, true]]);
    }
  });
});

describe("evaluation errors (strict throws, non-strict drops the record)", () => {
  const cases: Array<[unknown, 404 | 422, string]> = [
    [{ "&missing": { $gt: 10 } }, 404, "Reference 'missing' not found"],
    [{ "&constructor": { $eq: 1 } }, 404, "Reference 'constructor' not found"],
    [{ "@computed": { $eq: 1 } }, 404, "Reference '@computed' not found"],
    [{ $ref: "missing" }, 404, "Reference 'missing' not found"],
    [{ $add: ["&name", 1] }, 422, "Cannot add string to integer"],
    [{ $add: [1, "&name"] }, 422, "Cannot add integer to string"],
    [{ $add: ["&big", 1] }, 422, "Integer overflow in $add"],
    [{ $sub: ["&name", 1] }, 422, "Cannot subtract string from integer"],
    [{ $mult: ["&name", 2] }, 422, "Cannot multiply string by integer"],
    [{ $div: ["&score", "&zero"] }, 422, "Cannot divide by zero"],
    [{ $div: ["&name", 2] }, 422, "Cannot divide string"],
    [{ $div: [2, "&name"] }, 422, "Cannot divide by string"],
    [{ $div_num: ["&score", "&zero"] }, 422, "Cannot divide by zero"],
    [{ $rem: ["&score", "&zero"] }, 422, "Cannot divide by zero"],
    [{ $rem: ["&name", 2] }, 422, "Cannot divide string by integer"],
    [{ $abs: "&name" }, 422, "Cannot calculate absolute value of a string"],
    [{ $cast: ["&name", "int"] }, 422, "Value 'camera-01' could not be parsed as integer"],
    [{ $cast: ["&name", "float"] }, 422, "Value 'camera-01' could not be parsed as float"],
    [{ $cast: ["&score", "&name"] }, 422, "Unknown type 'camera-01'"],
    [{ $hour: ["$timestamp", "&name"] }, 422, "Invalid timezone: 'camera-01'"],
    [{ $hour: ["$timestamp", "&score"] }, 422, "$hour requires timezone to be a string"],
    [{ $hour: "&big" }, 422, "$hour requires a valid timestamp in microseconds, got 9223372036854775807"],
    [{ $each_n: "&zero" }, 422, "Value '0' is not a valid operand for $each_n"],
    [{ $limit: "&name" }, 422, "Value 'camera-01' could not be parsed as integer"],
    [{ $or: ["&missing", true] }, 404, "Reference 'missing' not found"],
  ];

  it.each(cases)("%j → %s %s", (when, status, message) => {
    const parsed = parseWhen(when);
    let caught: unknown;
    try {
      createEvaluator(parsed, { strict: true }).evaluate({ timestamp: 0, labels: LABELS });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConditionError);
    expect(caught).toMatchObject({ status, message });
    expect(createEvaluator(parsed, { strict: false }).evaluate({ timestamp: 0, labels: LABELS })).toBe(false);
  });

  it("short-circuits: an error after the deciding operand is never reached", () => {
    expect(select({ $or: [true, "&missing"] })).toBe(true);
    expect(select({ $and: [false, "&missing"] })).toBe(false);
    expect(select({ $in: ["&score", 20, "&missing"] })).toBe(true);
  });
});

describe("arithmetic result types", () => {
  const i = (value: number) => intValue(BigInt(value));
  const s = stringValue;
  const cases: Array<[string, () => Value, Value]> = [
    ["bool + bool", () => add("$add", TRUE, FALSE), i(1)],
    ["bool + int", () => add("$add", TRUE, i(2)), i(3)],
    ["bool + float", () => add("$add", TRUE, floatValue(2)), floatValue(3)],
    ["duration + int", () => add("$add", durationValue(2n), i(3)), i(5)],
    ["int + float", () => add("$add", i(2), floatValue(3)), floatValue(5)],
    ["string + string", () => add("$add", s("hello"), s("world")), s("helloworld")],
    ["int - bool", () => subtract("$sub", i(1), TRUE), i(0)],
    ["float - int", () => subtract("$sub", floatValue(1), i(1)), floatValue(0)],
    ["duration - duration", () => subtract("$sub", durationValue(5n), durationValue(7n)), i(-2)],
    ["bool * int", () => multiply("$mult", TRUE, i(2)), i(2)],
    ["float * duration", () => multiply("$mult", floatValue(2), durationValue(2n)), floatValue(4)],
    ["int / int", () => divide(i(5), i(2)), floatValue(2.5)],
    ["bool / duration", () => divide(TRUE, durationValue(4n)), floatValue(0.25)],
    ["int div_num float", () => divideIntegers("$div_num", i(6), floatValue(3)), i(2)],
    ["float div_num int", () => divideIntegers("$div_num", floatValue(7.9), i(2)), i(3)],
    ["int rem int", () => remainder("$rem", i(5), i(2)), i(1)],
    ["int rem float", () => remainder("$rem", i(6), floatValue(3.5)), floatValue(2.5)],
    ["float rem float", () => remainder("$rem", floatValue(-9), floatValue(3.5)), floatValue(-2)],
    ["abs bool", () => absolute("$abs", TRUE), i(1)],
    ["abs duration", () => absolute("$abs", durationValue(-1n)), i(1)],
    ["abs float", () => absolute("$abs", floatValue(-1)), floatValue(1)],
  ];
  it.each(cases)("%s", (_, run, expected) => {
    expect(run()).toEqual(expected);
  });

  it("float remainder by zero is NaN, not an error", () => {
    const result = remainder("$rem", floatValue(1), floatValue(0));
    expect(result.type).toBe("float");
    expect(Number.isNaN(result.value)).toBe(true);
  });

  it.each([
    [() => multiply("$mult", intValue(9223372036854775807n), intValue(2n)), "Integer overflow in $mult"],
    [() => subtract("$sub", intValue(-9223372036854775808n), intValue(1n)), "Integer overflow in $sub"],
    [() => divideIntegers("$div_num", intValue(-9223372036854775808n), intValue(-1n)), "Integer overflow in $div_num"],
    [() => absolute("$abs", intValue(-9223372036854775808n)), "Integer overflow in $abs"],
    [() => subtract("$sub", stringValue("a"), stringValue("b")), "Cannot subtract string"],
    [() => multiply("$mult", stringValue("a"), stringValue("b")), "Cannot multiply string by string"],
    [() => remainder("$rem", stringValue("a"), stringValue("b")), "Cannot divide string"],
    [() => remainder("$rem", durationValue(1n), stringValue("b")), "Cannot divide duration by string"],
    [() => add("$add", durationValue(1n), stringValue("b")), "Cannot add duration to string"],
  ])("%#: %s", (run, message) => {
    expect(run).toThrowError(message);
  });
});

describe("$cast", () => {
  const cases: Array<[Value, "bool" | "int" | "float" | "string" | "duration", Value]> = [
    [intValue(1n), "bool", TRUE],
    [stringValue(""), "bool", FALSE],
    [floatValue(1.9), "int", intValue(1n)],
    [stringValue("-3"), "int", intValue(-3n)],
    [durationValue(7n), "int", intValue(7n)],
    [TRUE, "float", floatValue(1)],
    [stringValue("1e3"), "float", floatValue(1000)],
    [floatValue(1), "string", stringValue("1")],
    [durationValue(1000000n), "string", stringValue("1s")],
    [intValue(90n), "duration", durationValue(90n)],
    [floatValue(2.7), "duration", durationValue(2n)],
    [stringValue("1h 30m"), "duration", durationValue(5400000000n)],
    [stringValue("15"), "duration", durationValue(15n)],
  ];
  it.each(cases)("%o as %s", (value, type, expected) => {
    expect(castValue(value, type)).toEqual(expected);
  });
});

describe("worked examples of `when`", () => {
  type Example = [when: unknown, records: Array<[timestamp: number, labels: Record<string, string>]>, selected: boolean[]];
  const examples: Example[] = [
    [
      { "&score": { $gt: 10 } },
      [
        [1, { score: "10" }],
        [2, { score: "20" }],
      ],
      [false, true],
    ],
    [
      { "&label1": { $and: true } },
      [
        [1, { label1: "true" }],
        [2, { label1: "false" }],
      ],
      [true, false],
    ],
    [
      { $each_n: 2 },
      [
        [1000, {}],
        [2000, {}],
        [3000, {}],
      ],
      [false, true, false],
    ],
    [
      { "&label3": { $eq: true } },
      [
        [1, { label3: "true" }],
        [2, { label3: "false" }],
      ],
      [true, false],
    ],
    [
      { $in: [{ "&key": { $cast: "string" } }, "meta-1", "$$system"] },
      [
        [1, { key: "meta-1" }],
        [2, { key: "$system" }],
        [3, { key: "system" }],
        [4, { key: "1" }],
      ],
      [true, true, false, false],
    ],
    [
      { $and: [{ "&x": { $gt: 10 } }, { "&y": { $lt: 20 } }], $limit: 100 },
      [
        [1, { x: "11", y: "19" }],
        [2, { x: "10", y: "19" }],
        [3, { x: "11", y: "20" }],
      ],
      [true, false, false],
    ],
    [
      { $timestamp: { $gte: 1700000000000000 } },
      [
        [1699999999999999, {}],
        [1700000000000000, {}],
      ],
      [false, true],
    ],
    [
      { $not: [{ $and: [{ $has: "remove" }, { "&remove": { $eq: true } }] }] },
      [
        [1, { key: "a", remove: "true" }],
        [2, { key: "b" }],
        [3, { key: "c", remove: "false" }],
      ],
      [false, true, true],
    ],
  ];
  it.each(examples)("%j", (when, records, selected) => {
    const evaluator = createEvaluator(parseWhen(when), { strict: false });
    expect(records.map(([timestamp, labels]) => evaluator.evaluate({ timestamp, labels }))).toEqual(selected);
  });
});
