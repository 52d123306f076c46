/**
 * Property tests (fast-check): no JSON input makes `parseWhen` or an evaluator throw anything but a
 * `ConditionError` with a contract status, and non-strict evaluation of a valid record never throws.
 * Two generators: arbitrary JSON, and JSON biased towards the language (operators, labels,
 * directives, durations) so deep paths are reached.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ConditionError,
  type ConditionRecord,
  createEvaluator,
  OPERATOR_NAMES,
  type ParsedWhen,
  parseWhen,
} from "../../src/query/condition";
import { INTERNAL_FAILURE_PREFIX } from "../../src/query/condition/errors";

const NUM_RUNS = 1_000;

/** Runs `fn`; returns its result, or undefined after checking that it threw a proper ConditionError. */
function guarded<T>(fn: () => T, allowed: readonly number[] = [400, 404, 422]): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof ConditionError)) throw error;
    expect(error.message.startsWith(INTERNAL_FAILURE_PREFIX), error.message).toBe(false);
    expect(allowed).toContain(error.status);
    return undefined;
  }
}

const STRING_LEAVES = [
  "&a",
  "&b",
  "&missing",
  "&constructor",
  "@computed",
  "$timestamp",
  "$id",
  "$each_n",
  "$$escaped",
  "$unknown",
  "1h",
  "-30m",
  "1h -30m",
  "1.5s",
  "0us",
  "inf",
  "NaN",
  "UTC",
  "Europe/Berlin",
  "Mars/Olympus",
  "string",
  "int",
  "float",
  "duration",
  "bool",
  "",
  "a",
];

const KEYS = [
  ...OPERATOR_NAMES,
  "$bogus",
  "$$x",
  "and",
  "&a",
  "&b",
  "#ctx_before",
  "#select_labels",
  "#batch_size",
  "#ext",
  "#nope",
];

const leaf = fc.oneof(
  fc.constantFrom(...STRING_LEAVES),
  fc.integer({ min: -3, max: 3 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(2 ** 53 + 2),
  fc.string({ maxLength: 8 }),
);

const { node: conditionJson } = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object")),
  array: fc.array(tie("node"), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 4 })), tie("node"), { maxKeys: 3 }),
}));

const LABEL_VALUES = [
  "true",
  "false",
  "0",
  "1",
  "-1",
  "1e3",
  "inf",
  "NaN",
  "9223372036854775807",
  "5m",
  "x",
  "",
  "Europe/Berlin",
];

const record: fc.Arbitrary<ConditionRecord> = fc.record({
  timestamp: fc.oneof(fc.nat({ max: 4_000_000 }), fc.maxSafeNat()),
  labels: fc.dictionary(
    fc.constantFrom("a", "b", "c", "remove", "constructor", "__proto__"),
    fc.oneof(fc.constantFrom(...LABEL_VALUES), fc.string({ maxLength: 6 })),
    { maxKeys: 4 },
  ),
});

function exercise(parsed: ParsedWhen, records: ConditionRecord[]): void {
  const lenient = createEvaluator(parsed, { strict: false });
  for (const item of records) {
    expect(typeof lenient.evaluate(item)).toBe("boolean");
  }
  const snapshot = JSON.parse(JSON.stringify(lenient.snapshot())) as unknown;
  createEvaluator(parsed, { strict: false, state: snapshot });

  const strict = createEvaluator(parsed, { strict: true });
  for (const item of records) {
    if (guarded(() => strict.evaluate(item), [404, 422]) === undefined) break;
  }
}

describe("fuzz: only ConditionError ever escapes", () => {
  it("arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(record, { maxLength: 4 }), (json, records) => {
        const parsed = guarded(() => parseWhen(json), [422]);
        if (parsed !== undefined) exercise(parsed, records);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("language-shaped JSON", () => {
    fc.assert(
      fc.property(conditionJson, fc.array(record, { maxLength: 6 }), (json, records) => {
        const parsed = guarded(() => parseWhen(json), [422]);
        if (parsed !== undefined) exercise(parsed, records);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("the language-shaped generator reaches valid conditions and evaluation errors", () => {
    let parsedCount = 0;
    let strictErrors = 0;
    fc.assert(
      fc.property(conditionJson, record, (json, item) => {
        const parsed = guarded(() => parseWhen(json), [422]);
        if (parsed === undefined) return;
        parsedCount += 1;
        if (guarded(() => createEvaluator(parsed, { strict: true }).evaluate(item), [404, 422]) === undefined) {
          strictErrors += 1;
        }
      }),
      { numRuns: NUM_RUNS, seed: 42 },
    );
    expect(parsedCount).toBeGreaterThan(100);
    expect(strictErrors).toBeGreaterThan(0);
  });
});
