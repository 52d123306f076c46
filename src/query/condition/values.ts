/**
 * Value types of the `when` language and their coercions. Label values arrive as
 * strings and are parsed on every reference; constants come from JSON. Integers and durations are
 * `bigint` so the whole i64 range of the reference behaves exactly (no silent precision loss);
 * floats are JS numbers (f64). Formatting follows Rust's `Display`, because stringified values are
 * compared with label names and other strings.
 */

import { unprocessable } from "./errors";

export type Value =
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "int"; readonly value: bigint }
  | { readonly type: "float"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "duration"; readonly value: bigint };

export type ValueType = Value["type"];

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

export const TRUE: Value = { type: "bool", value: true };
export const FALSE: Value = { type: "bool", value: false };

export const boolValue = (value: boolean): Value => (value ? TRUE : FALSE);
export const intValue = (value: bigint): Value => ({ type: "int", value });
export const floatValue = (value: number): Value => ({ type: "float", value });
export const stringValue = (value: string): Value => ({ type: "string", value });
export const durationValue = (value: bigint): Value => ({ type: "duration", value });

/** Type names as the reference spells them in error messages. */
export const TYPE_NAMES: Readonly<Record<ValueType, string>> = {
  bool: "boolean",
  int: "integer",
  float: "float",
  string: "string",
  duration: "duration",
};

const I64_PATTERN = /^[+-]?\d+$/;
/** Rust's `f64::from_str` grammar: sign, `inf`/`infinity`/`nan` or a decimal with exponent. */
const F64_PATTERN = /^[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$/i;

export const isInI64Range = (value: bigint): boolean => value >= I64_MIN && value <= I64_MAX;

/** Parses a string as Rust's `i64::from_str` would; `undefined` when it is not an i64. */
export function parseI64(text: string): bigint | undefined {
  if (!I64_PATTERN.test(text)) return undefined;
  const value = BigInt(text);
  return isInI64Range(value) ? value : undefined;
}

/** Parses a string as Rust's `f64::from_str` would; `undefined` when it is not a float. */
export function parseF64(text: string): number | undefined {
  if (!F64_PATTERN.test(text)) return undefined;
  const lower = text.toLowerCase();
  const negative = lower.startsWith("-");
  const body = lower.replace(/^[+-]/, "");
  if (body === "inf" || body === "infinity") return negative ? -Infinity : Infinity;
  if (body === "nan") return Number.NaN;
  return Number(text);
}

/** A label value: exactly `true`/`false` → Bool; else i64 → Int; else f64 → Float; else String. */
export function parseLabelValue(text: string): Value {
  if (text === "true") return TRUE;
  if (text === "false") return FALSE;
  const int = parseI64(text);
  if (int !== undefined) return intValue(int);
  const float = parseF64(text);
  if (float !== undefined) return floatValue(float);
  return stringValue(text);
}

/** Truthiness: Bool as is; numbers and durations ≠ 0 (NaN is truthy, as in Rust); non-empty string. */
export function isTruthy(value: Value): boolean {
  switch (value.type) {
    case "bool":
      return value.value;
    case "int":
    case "duration":
      return value.value !== 0n;
    case "float":
      return value.value !== 0;
    case "string":
      return value.value.length > 0;
  }
}

/** Rust's saturating `f64 as i64`: NaN → 0, ±inf and out-of-range values clamp. */
export function truncateToI64(value: number): bigint {
  if (Number.isNaN(value)) return 0n;
  if (value >= 9.223372036854776e18) return I64_MAX;
  if (value <= -9.223372036854776e18) return I64_MIN;
  return BigInt(Math.trunc(value));
}

/** `as_int` of the reference: Bool 0/1, Float truncated, String must parse as i64. */
export function toInt(value: Value): bigint {
  switch (value.type) {
    case "bool":
      return value.value ? 1n : 0n;
    case "int":
    case "duration":
      return value.value;
    case "float":
      return truncateToI64(value.value);
    case "string": {
      const parsed = parseI64(value.value);
      if (parsed === undefined) throw unprocessable(`Value '${value.value}' could not be parsed as integer`);
      return parsed;
    }
  }
}

/** `as_float` of the reference: Bool 0/1, Int/Duration converted, String must parse as f64. */
export function toFloat(value: Value): number {
  switch (value.type) {
    case "bool":
      return value.value ? 1 : 0;
    case "int":
    case "duration":
      return Number(value.value);
    case "float":
      return value.value;
    case "string": {
      const parsed = parseF64(value.value);
      if (parsed === undefined) throw unprocessable(`Value '${value.value}' could not be parsed as float`);
      return parsed;
    }
  }
}

/** Formats an f64 like Rust's `Display`: shortest round-trip digits, never exponent notation. */
export function formatFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (Object.is(value, -0)) return "-0";
  const text = String(value);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (match === null) return text;
  const sign = match[1] ?? "";
  const digits = `${match[2] ?? ""}${match[3] ?? ""}`;
  const exponent = Number(match[4]);
  if (exponent >= 0) {
    const zeros = exponent - (digits.length - 1);
    return zeros >= 0
      ? `${sign}${digits}${"0".repeat(zeros)}`
      : `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  }
  return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
}

const DURATION_UNITS_US: ReadonlyArray<readonly [string, bigint]> = [
  ["d", 86_400_000_000n],
  ["h", 3_600_000_000n],
  ["m", 60_000_000n],
  ["s", 1_000_000n],
  ["ms", 1_000n],
  ["us", 1n],
];

const DURATION_UNIT_US: Readonly<Record<string, bigint>> = Object.fromEntries(DURATION_UNITS_US);
const DURATION_PART_PATTERN = /^(-?\d+)(us|ms|s|m|h|d)$/;

/**
 * Parses a duration literal (`"1h -30m"`, units us ms s m h d, integers only) into µs. Returns
 * `undefined` for anything else, including totals outside i64: such strings stay string constants.
 */
export function parseDurationLiteral(text: string): bigint | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  let total = 0n;
  for (const part of trimmed.split(/\s+/)) {
    const match = DURATION_PART_PATTERN.exec(part);
    if (match === null) return undefined;
    const amount = BigInt(match[1] ?? "");
    const unit = DURATION_UNIT_US[match[2] ?? ""];
    if (unit === undefined) return undefined;
    const partUs = amount * unit;
    if (!isInI64Range(partUs)) return undefined;
    total += partUs;
  }
  return isInI64Range(total) ? total : undefined;
}

/** Formats µs as `1d 2h 3m 4s 5ms 6us` parts (largest first, truncating toward zero); 0 → `0us`. */
export function formatDuration(us: bigint): string {
  const parts: string[] = [];
  let rest = us;
  for (const [unit, size] of DURATION_UNITS_US) {
    if ((rest < 0n ? -rest : rest) >= size) {
      const amount = rest / size;
      parts.push(`${amount}${unit}`);
      rest -= amount * size;
    }
  }
  return parts.length === 0 ? "0us" : parts.join(" ");
}

/** Stringification used by `$cast` to string, `$exists`, `$ref` and the string operators. */
export function stringify(value: Value): string {
  switch (value.type) {
    case "bool":
      return value.value ? "true" : "false";
    case "int":
      return value.value.toString();
    case "float":
      return formatFloat(value.value);
    case "string":
      return value.value;
    case "duration":
      return formatDuration(value.value);
  }
}

/**
 * Maps a UTF-16 code unit so that comparing mapped units orders strings by code point, which is
 * the same order as comparing their UTF-8 bytes (Rust's `str` ordering).
 */
function codePointOrderKey(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Byte-wise (UTF-8) lexicographic comparison of two strings. */
export function compareStrings(left: string, right: string): -1 | 0 | 1 {
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const a = left.charCodeAt(i);
    const b = right.charCodeAt(i);
    if (a !== b) return codePointOrderKey(a) < codePointOrderKey(b) ? -1 : 1;
  }
  if (left.length === right.length) return 0;
  return left.length < right.length ? -1 : 1;
}

type Numeric = { readonly kind: "int"; readonly value: bigint } | { readonly kind: "float"; readonly value: number };

/** The numeric view of a non-string value: Bool as 0/1, Duration as µs. */
export function numeric(value: Exclude<Value, { type: "string" }>): Numeric {
  switch (value.type) {
    case "bool":
      return { kind: "int", value: value.value ? 1n : 0n };
    case "int":
    case "duration":
      return { kind: "int", value: value.value };
    case "float":
      return { kind: "float", value: value.value };
  }
}

function compareNumbers(a: number, b: number): -1 | 0 | 1 | undefined {
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/**
 * Ordering: Bool, Int, Float and Duration compare numerically with each other; String
 * only with String. `undefined` when not comparable (string vs non-string, or NaN).
 */
export function compareValues(left: Value, right: Value): -1 | 0 | 1 | undefined {
  if (left.type === "string" || right.type === "string") {
    if (left.type === "string" && right.type === "string") return compareStrings(left.value, right.value);
    return undefined;
  }
  const a = numeric(left);
  const b = numeric(right);
  if (a.kind === "int" && b.kind === "int") {
    if (a.value === b.value) return 0;
    return a.value < b.value ? -1 : 1;
  }
  return compareNumbers(Number(a.value), Number(b.value));
}

/** Equality (string vs non-string is never equal; NaN equals nothing). */
export function valuesEqual(left: Value, right: Value): boolean {
  return compareValues(left, right) === 0;
}
