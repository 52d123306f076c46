/**
 * Date/time operators: `$year $month $day $hour $minute $second $weekday` of a µs
 * timestamp, in UTC or in an optional IANA time zone (resolved with `Intl.DateTimeFormat`, which is
 * pure computation). `$weekday` is 0 = Monday … 6 = Sunday; years are astronomical (0 = 1 BC).
 */

import { unprocessable } from "../errors";
import type { Node } from "../nodes";
import { intValue, toInt, type Value } from "../values";
import type { OperatorBuilder } from "./operator";

interface DateParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

/** JS `Date` range (±8.64e15 ms); timestamps outside it cannot be broken into fields. */
const MAX_DATE_MS = 8_640_000_000_000_000n;
const MAX_CACHED_FORMATTERS = 128;
const WEEKDAYS: Readonly<Record<string, number>> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

const FORMATTERS = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat | undefined {
  const cached = FORMATTERS.get(timeZone);
  if (cached !== undefined) return cached;
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      weekday: "short",
    });
  } catch {
    return undefined;
  }
  if (FORMATTERS.size >= MAX_CACHED_FORMATTERS) FORMATTERS.clear();
  FORMATTERS.set(timeZone, formatter);
  return formatter;
}

/** Returns the zone name of a time-zone operand or throws the reference's 422. */
export function checkTimeZone(name: string, value: Value): string {
  if (value.type !== "string") throw unprocessable(`${name} requires timezone to be a string`);
  if (formatterFor(value.value) === undefined) throw unprocessable(`Invalid timezone: '${value.value}'`);
  return value.value;
}

function utcParts(date: Date): DateParts {
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
    hour: date.getUTCHours(),
    minute: date.getUTCMinutes(),
    second: date.getUTCSeconds(),
    weekday: (date.getUTCDay() + 6) % 7,
  };
}

function zonedParts(date: Date, formatter: Intl.DateTimeFormat): DateParts {
  const fields: Record<string, string> = {};
  for (const part of formatter.formatToParts(date)) fields[part.type] = part.value;
  const year = Number(fields.year);
  return {
    year: fields.era === "BC" ? 1 - year : year,
    month: Number(fields.month),
    day: Number(fields.day),
    hour: Number(fields.hour),
    minute: Number(fields.minute),
    second: Number(fields.second),
    weekday: WEEKDAYS[fields.weekday ?? ""] ?? 0,
  };
}

/** Floor division, so that negative timestamps land in the right second. */
function floorDiv(value: bigint, divisor: bigint): bigint {
  const quotient = value / divisor;
  return value % divisor !== 0n && value < 0n ? quotient - 1n : quotient;
}

function dateParts(name: string, timestampUs: bigint, timeZone: string | undefined): DateParts {
  const ms = floorDiv(timestampUs, 1000n);
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) {
    throw unprocessable(`${name} requires a valid timestamp in microseconds, got ${timestampUs}`);
  }
  const date = new Date(Number(ms));
  if (timeZone === undefined) return utcParts(date);
  const formatter = formatterFor(timeZone);
  if (formatter === undefined) throw unprocessable(`Invalid timezone: '${timeZone}'`);
  return zonedParts(date, formatter);
}

function dateOperator(field: keyof DateParts): OperatorBuilder {
  return (name, operands) => {
    if (operands.length !== 1 && operands.length !== 2) throw unprocessable(`${name} requires one or two operands`);
    const [timestamp, zone] = operands as [Node, Node | undefined];
    const constantZone = zone?.constant === undefined ? undefined : checkTimeZone(name, zone.constant);
    return {
      name,
      evaluate(context) {
        const us = toInt(timestamp.evaluate(context));
        const timeZone = zone === undefined ? undefined : (constantZone ?? checkTimeZone(name, zone.evaluate(context)));
        return intValue(BigInt(dateParts(name, us, timeZone)[field]));
      },
    };
  };
}

export const DATE_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $year: dateOperator("year"),
  $month: dateOperator("month"),
  $day: dateOperator("day"),
  $hour: dateOperator("hour"),
  $minute: dateOperator("minute"),
  $second: dateOperator("second"),
  $weekday: dateOperator("weekday"),
};
