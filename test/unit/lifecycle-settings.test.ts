/**
 * Lifecycle settings: the duration grammar of ReductStore (whitespace-separated parts, units us ms
 * s m h d, signed integers), the bounded range, and a derived processing_interval that parses back
 * to exactly the value it was derived from.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/bucket/lifecycle-durations";
import { lifecycleTimes, parseLifecycleSettings } from "../../src/bucket/lifecycle-settings";
import { HttpError } from "../../src/errors";

const HOUR_US = 3_600_000_000;
const MAX_US = 36_500 * 24 * HOUR_US;

function settings(extra: Record<string, unknown>) {
  return parseLifecycleSettings({ type: "delete", bucket: "b", older_than: "30d", ...extra });
}

/** The 422 message a body is refused with, or the µs values it is accepted with. */
function outcome(extra: Record<string, unknown>): string | { olderThanUs: number; intervalUs: number } {
  try {
    const { olderThanUs, intervalUs } = lifecycleTimes(settings(extra));
    return { olderThanUs, intervalUs };
  } catch (error) {
    if (!(error instanceof HttpError) || error.status !== 422) throw error;
    return error.message;
  }
}

describe("lifecycle durations", () => {
  const accepted: [string, number][] = [
    ["1h", HOUR_US],
    ["3600s", HOUR_US],
    ["60m", HOUR_US],
    ["3600000ms", HOUR_US],
    ["3600000000us", HOUR_US],
    ["2h -30m", 90 * 60_000_000],
    ["-1h 3h", 2 * HOUR_US],
    ["1d", 24 * HOUR_US],
    ["1h 30m 15s 10ms 5us", HOUR_US + 30 * 60_000_000 + 15_000_000 + 10_000 + 5],
    ["  1h  ", HOUR_US],
    ["1h\t30m", HOUR_US + 30 * 60_000_000],
    ["1h\n30m", HOUR_US + 30 * 60_000_000],
    ["1h\u00a030m", HOUR_US + 30 * 60_000_000],
    ["1h\u300030m", HOUR_US + 30 * 60_000_000],
    ["0001h", HOUR_US],
    // ReductStore splits a part into its digits, '.' and '-' (the value) and the rest (the unit).
    ["h1", HOUR_US],
    ["36500d", MAX_US],
  ];
  for (const [text, us] of accepted) {
    it(`older_than ${JSON.stringify(text)} is ${us} µs`, () => {
      expect(outcome({ older_than: text })).toEqual({ olderThanUs: us, intervalUs: HOUR_US });
    });
  }

  const invalid = (text: string, reason: string) => `Invalid lifecycle older than '${text}': [UnprocessableEntity] ${reason}`;
  const refused: [string, string][] = [
    ["", invalid("", "Duration literal cannot be empty")],
    [" \t ", invalid(" \t ", "Duration literal cannot be empty")],
    ["1h30m", invalid("1h30m", "Invalid duration unit: hm")],
    ["1w", invalid("1w", "Invalid duration unit: w")],
    ["1 h", invalid("1 h", "Invalid duration unit: ")],
    ["1H", invalid("1H", "Invalid duration unit: H")],
    ["+1h", invalid("+1h", "Invalid duration unit: +h")],
    ["1h,2m", invalid("1h,2m", "Invalid duration unit: h,m")],
    ["1h\ufeff", invalid("1h\ufeff", "Invalid duration unit: h\ufeff")],
    ["1.5h", invalid("1.5h", "Invalid duration value: 1.5h")],
    ["soon", invalid("soon", "Invalid duration value: soon")],
    ["h", invalid("h", "Invalid duration value: h")],
    ["--1h", invalid("--1h", "Invalid duration value: --1h")],
    ["1h -", invalid("1h -", "Invalid duration value: -")],
    ["1-h", invalid("1-h", "Invalid duration value: 1-h")],
    ["1d ٣h", invalid("1d ٣h", "Invalid duration value: ٣h")],
    ["9223372036854775808us", invalid("9223372036854775808us", "Invalid duration value: 9223372036854775808us")],
    ["59m", "Lifecycle older than '59m' is shorter than minimum allowed value of 1h"],
    ["2h -90m", "Lifecycle older than '2h -90m' is shorter than minimum allowed value of 1h"],
    ["-1d", "Lifecycle older than '-1d' is shorter than minimum allowed value of 1h"],
    ["36500d 1us", "Lifecycle older than '36500d 1us' is longer than maximum allowed value of 36500d"],
    ["9223372036854775807us", "Lifecycle older than '9223372036854775807us' is longer than maximum allowed value of 36500d"],
    ["106751991d", "Lifecycle older than '106751991d' is longer than maximum allowed value of 36500d"],
  ];
  for (const [text, message] of refused) {
    it(`older_than ${JSON.stringify(text)} → 422 ${message}`, () => {
      expect(outcome({ older_than: text })).toBe(message);
    });
  }

  it.each([
    ["9000000000000000us", "Lifecycle interval '9000000000000000us' is longer than maximum allowed value of 36500d"],
    ["599s", "Lifecycle interval '599s' is shorter than minimum allowed value of 10m"],
    ["1x", "Invalid lifecycle interval '1x': [UnprocessableEntity] Invalid duration unit: x"],
  ])("interval %j → 422 %s", (interval, message) => {
    expect(outcome({ interval })).toBe(message);
  });

  it.each([
    ["0s", "Lifecycle processing interval '0s' must be positive"],
    ["1h -2h", "Lifecycle processing interval '1h -2h' must be positive"],
    ["36501d", "Lifecycle processing interval '36501d' is longer than maximum allowed value of 36500d"],
    [
      "14400.000024s",
      "Invalid lifecycle processing interval '14400.000024s': [UnprocessableEntity] Invalid duration value: 14400.000024s",
    ],
  ])("processing_interval %j → 422 %s", (processing_interval, message) => {
    expect(outcome({ processing_interval })).toBe(message);
  });
});

describe("derived processing_interval", () => {
  it.each([
    ["3600s", "86400s"],
    ["10m", "14400s"],
    ["600000001us", "14400000024us"],
    ["1h 1us", "86400000024us"],
    ["1000d", "2073600000s"],
    ["3650d", "3153600000s"],
    // 24 intervals past the range are the range's end.
    ["36500d", "3153600000s"],
  ])("interval %j → %j", (interval, expected) => {
    expect(settings({ interval }).processing_interval).toBe(expected);
  });

  it("is a whole number of µs that both grammars read back exactly (property, fixed seed)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 600_000_000, max: MAX_US }), (intervalUs) => {
        const first = settings({ interval: `${intervalUs}us` });
        expect(first.processing_interval).toMatch(/^\d+(s|us)$/);
        const expectedUs = Math.min(intervalUs * 24, MAX_US);
        expect(lifecycleTimes(first).processingIntervalUs).toBe(expectedUs);
        // What GET shows is accepted back by PUT, unchanged.
        const again = settings({ interval: first.interval, processing_interval: first.processing_interval });
        expect(again).toEqual(first);
      }),
      { seed: 20261202, numRuns: 500 },
    );
  });

  it("format(parse(x)) parses to the same value for any literal of the grammar (property, fixed seed)", () => {
    const part = fc
      .tuple(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), fc.constantFrom("us", "ms", "s", "m", "h", "d"))
      .map(([amount, unit]) => `${amount}${unit}`);
    const literal = fc
      .tuple(fc.array(part, { minLength: 1, maxLength: 4 }), fc.constantFrom(" ", "  ", "\t", "\n", "\u00a0"))
      .map(([parts, separator]) => parts.join(separator));
    fc.assert(
      fc.property(literal, (text) => {
        const parsed = parseDuration(text);
        if (!parsed.ok) throw new Error(`${JSON.stringify(text)}: ${parsed.error}`);
        if (parsed.us > BigInt(Number.MAX_SAFE_INTEGER) || parsed.us < BigInt(Number.MIN_SAFE_INTEGER)) return;
        const formatted = formatDuration(Number(parsed.us));
        expect(formatted).toMatch(/^-?\d+(s|us)$/);
        expect(parseDuration(formatted)).toEqual(parsed);
      }),
      { seed: 20261202, numRuns: 1000 },
    );
  });
});
