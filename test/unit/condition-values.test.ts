/**
 * Value types and coercions of the `when` language: label parsing, truthiness, numeric and
 * string ordering across types, Rust-style formatting of floats and durations, duration literals.
 */
import { describe, expect, it } from "vitest";
import { ConditionError } from "../../src/query/condition";
import {
  compareStrings,
  compareValues,
  durationValue,
  FALSE,
  floatValue,
  formatDuration,
  formatFloat,
  intValue,
  isTruthy,
  parseDurationLiteral,
  parseLabelValue,
  stringify,
  stringValue,
  TRUE,
  toFloat,
  toInt,
  type Value,
  valuesEqual,
} from "../../src/query/condition/values";

describe("parseLabelValue", () => {
  const cases: Array<[string, Value]> = [
    ["true", TRUE],
    ["false", FALSE],
    ["True", stringValue("True")],
    ["TRUE", stringValue("TRUE")],
    ["10", intValue(10n)],
    ["-42", intValue(-42n)],
    ["+5", intValue(5n)],
    ["007", intValue(7n)],
    ["9223372036854775807", intValue(9223372036854775807n)],
    ["-9223372036854775808", intValue(-9223372036854775808n)],
    ["9223372036854775808", floatValue(2 ** 63)],
    ["1.5", floatValue(1.5)],
    ["-0.25", floatValue(-0.25)],
    ["1e3", floatValue(1000)],
    ["1E-2", floatValue(0.01)],
    [".5", floatValue(0.5)],
    ["1.", floatValue(1)],
    ["inf", floatValue(Infinity)],
    ["-inf", floatValue(-Infinity)],
    ["Infinity", floatValue(Infinity)],
    ["abc", stringValue("abc")],
    ["", stringValue("")],
    [" 1", stringValue(" 1")],
    ["1 ", stringValue("1 ")],
    ["1_000", stringValue("1_000")],
    ["0x10", stringValue("0x10")],
    ["1e", stringValue("1e")],
    [".", stringValue(".")],
    ["5m", stringValue("5m")],
  ];
  it.each(cases)("%j", (text, expected) => {
    expect(parseLabelValue(text)).toEqual(expected);
  });

  it.each(["NaN", "nan", "-NaN"])("%j is a NaN float", (text) => {
    const value = parseLabelValue(text);
    expect(value.type).toBe("float");
    expect(Number.isNaN(value.value)).toBe(true);
  });
});

describe("isTruthy", () => {
  const cases: Array<[Value, boolean]> = [
    [TRUE, true],
    [FALSE, false],
    [intValue(1n), true],
    [intValue(-1n), true],
    [intValue(0n), false],
    [floatValue(0.1), true],
    [floatValue(0), false],
    [floatValue(-0), false],
    [floatValue(Number.NaN), true],
    [durationValue(1n), true],
    [durationValue(0n), false],
    [stringValue("x"), true],
    [stringValue("false"), true],
    [stringValue(""), false],
  ];
  it.each(cases)("%o → %s", (value, expected) => {
    expect(isTruthy(value)).toBe(expected);
  });
});

describe("equality and ordering across types", () => {
  const cases: Array<[Value, Value, -1 | 0 | 1 | undefined]> = [
    [TRUE, TRUE, 0],
    [TRUE, FALSE, 1],
    [TRUE, intValue(1n), 0],
    [TRUE, intValue(2n), -1],
    [FALSE, intValue(-1n), 1],
    [TRUE, floatValue(1), 0],
    [TRUE, floatValue(0.5), 1],
    [TRUE, durationValue(1n), 0],
    [intValue(1n), floatValue(1), 0],
    [intValue(1n), floatValue(1.5), -1],
    [intValue(3600000000n), durationValue(3600000000n), 0],
    [durationValue(60000000n), durationValue(3540000000n), -1],
    [floatValue(-1), durationValue(1n), -1],
    [intValue(9223372036854775807n), intValue(9223372036854775806n), 1],
    [stringValue("a"), stringValue("a"), 0],
    [stringValue("a"), stringValue("b"), -1],
    [stringValue("b"), stringValue("a"), 1],
    [stringValue("ab"), stringValue("a"), 1],
    [stringValue("10"), intValue(10n), undefined],
    [intValue(10n), stringValue("10"), undefined],
    [TRUE, stringValue("true"), undefined],
    [stringValue("1s"), durationValue(1000000n), undefined],
    [floatValue(Number.NaN), floatValue(Number.NaN), undefined],
    [floatValue(Number.NaN), intValue(1n), undefined],
  ];
  it.each(cases)("%o vs %o → %s", (left, right, expected) => {
    expect(compareValues(left, right)).toBe(expected);
    expect(valuesEqual(left, right)).toBe(expected === 0);
  });

  it("orders strings by UTF-8 bytes (code points), not UTF-16 units", () => {
    expect(compareStrings("\uffff", "\u{1f600}")).toBe(-1);
    expect(compareStrings("\u{1f600}", "\uffff")).toBe(1);
    expect(compareStrings("Z", "a")).toBe(-1);
    expect(compareStrings("é", "z")).toBe(1);
  });
});

describe("toInt / toFloat", () => {
  const ints: Array<[Value, bigint]> = [
    [TRUE, 1n],
    [FALSE, 0n],
    [floatValue(1.9), 1n],
    [floatValue(-1.9), -1n],
    [floatValue(Number.NaN), 0n],
    [floatValue(Infinity), 9223372036854775807n],
    [floatValue(-Infinity), -9223372036854775808n],
    [stringValue("42"), 42n],
    [durationValue(5n), 5n],
  ];
  it.each(ints)("toInt(%o) = %s", (value, expected) => {
    expect(toInt(value)).toBe(expected);
  });

  const floats: Array<[Value, number]> = [
    [TRUE, 1],
    [intValue(3n), 3],
    [stringValue("1.5"), 1.5],
    [stringValue("1e3"), 1000],
    [durationValue(7n), 7],
  ];
  it.each(floats)("toFloat(%o) = %s", (value, expected) => {
    expect(toFloat(value)).toBe(expected);
  });

  it.each([
    [() => toInt(stringValue("xx")), "Value 'xx' could not be parsed as integer"],
    [() => toInt(stringValue("1.5")), "Value '1.5' could not be parsed as integer"],
    [() => toFloat(stringValue("xx")), "Value 'xx' could not be parsed as float"],
  ])("%#: rejects unparsable strings with 422", (fn, message) => {
    let caught: unknown;
    try {
      fn();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConditionError);
    expect(caught).toMatchObject({ status: 422, message });
  });
});

describe("stringification (Rust Display)", () => {
  const cases: Array<[Value, string]> = [
    [TRUE, "true"],
    [FALSE, "false"],
    [intValue(-12n), "-12"],
    [intValue(9223372036854775807n), "9223372036854775807"],
    [floatValue(42), "42"],
    [floatValue(1.5), "1.5"],
    [floatValue(-0), "-0"],
    [floatValue(0.1 + 0.2), "0.30000000000000004"],
    [floatValue(1e21), "1000000000000000000000"],
    [floatValue(1.5e22), "15000000000000000000000"],
    [floatValue(1e-7), "0.0000001"],
    [floatValue(-2.5e-8), "-0.000000025"],
    [floatValue(Number.NaN), "NaN"],
    [floatValue(Infinity), "inf"],
    [floatValue(-Infinity), "-inf"],
    [stringValue("text"), "text"],
    [durationValue(0n), "0us"],
    [durationValue(5405000000n), "1h 30m 5s"],
  ];
  it.each(cases)("%o → %j", (value, expected) => {
    expect(stringify(value)).toBe(expected);
  });

  it("formatFloat agrees with stringify for floats", () => {
    expect(formatFloat(123.456)).toBe("123.456");
  });
});

describe("duration literals", () => {
  const valid: Array<[string, bigint]> = [
    ["1us", 1n],
    ["100ms", 100000n],
    ["1s", 1000000n],
    ["1m", 60000000n],
    ["1h", 3600000000n],
    ["1d", 86400000000n],
    ["-1s", -1000000n],
    ["1h -30m", 1800000000n],
    ["100ms 500us", 100500n],
    ["2d 3h", 183600000000n],
    ["  5s  ", 5000000n],
    ["0us", 0n],
  ];
  it.each(valid)("%j = %s µs", (text, expected) => {
    expect(parseDurationLiteral(text)).toBe(expected);
  });

  it.each(["", "   ", "1.5s", "2.5m", "s1", "1x", "100xyz", "1h,2m", "abc", "1", "+1s", "1 s", "99999999999999999999d"])(
    "%j is not a duration",
    (text) => {
      expect(parseDurationLiteral(text)).toBeUndefined();
    },
  );

  const formatted: Array<[bigint, string]> = [
    [0n, "0us"],
    [1n, "1us"],
    [-1n, "-1us"],
    [100n, "100us"],
    [100000n, "100ms"],
    [1000000n, "1s"],
    [-1000000n, "-1s"],
    [60000000n, "1m"],
    [3600000000n, "1h"],
    [86400000000n, "1d"],
    [90000000000n, "1d 1h"],
    [82800000005n, "23h 5us"],
    [5405000000n, "1h 30m 5s"],
    [-5400000000n, "-1h -30m"],
  ];
  it.each(formatted)("%s µs → %j and back", (us, text) => {
    expect(formatDuration(us)).toBe(text);
    expect(parseDurationLiteral(text)).toBe(us);
  });
});
