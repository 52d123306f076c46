/**
 * The evaluator over sequences of records: strict vs non-strict errors, the stateful operators
 * (`$each_n`, `$each_t`, `$limit`, `$gate`) with per-entry state, `done`, and the JSON snapshot that
 * lets a query cursor survive a Durable Object restart.
 */
import { describe, expect, it } from "vitest";
import { ConditionError, createEvaluator, type EvaluatorState, parseWhen } from "../../src/query/condition";

type Row = [timestamp: number, labels?: Record<string, string>];

function run(when: unknown, rows: Row[], strict = false): boolean[] {
  const evaluator = createEvaluator(parseWhen(when), { strict });
  return rows.map(([timestamp, labels]) => evaluator.evaluate({ timestamp, labels: labels ?? {} }));
}

function thrown(fn: () => unknown): ConditionError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConditionError) return error;
    throw error;
  }
  throw new Error("expected a ConditionError");
}

const S = 1_000_000;

describe("strict vs non-strict", () => {
  it("a missing label drops the record in non-strict mode", () => {
    expect(
      run({ "&NOT_EXIST": { $gt: 10 } }, [
        [1, { score: "20" }],
        [2, {}],
      ]),
    ).toEqual([false, false]);
  });

  it("a missing label fails with 404 in strict mode", () => {
    const evaluator = createEvaluator(parseWhen({ "&NOT_EXIST": { $gt: 10 } }), { strict: true });
    expect(thrown(() => evaluator.evaluate({ timestamp: 1, labels: {} }))).toMatchObject({
      status: 404,
      message: "Reference 'NOT_EXIST' not found",
    });
  });

  it("an error inside $or makes the whole record unselected in non-strict mode", () => {
    expect(run({ $or: ["&missing", true] }, [[1]])).toEqual([false]);
  });

  it("strict mode selects normally when nothing fails", () => {
    expect(
      run(
        { "&score": { $gt: 10 } },
        [
          [1, { score: "10" }],
          [2, { score: "20" }],
        ],
        true,
      ),
    ).toEqual([false, true]);
  });
});

describe("stateful operators over sequences", () => {
  const cases: Array<[string, unknown, Row[], boolean[]]> = [
    ["$each_n: 2 over 3 records → only the 2nd", { $each_n: 2 }, [[1000], [2000], [3000]], [false, true, false]],
    ["$each_n: 3", { $each_n: 3 }, [[1], [2], [3], [4], [5], [6]], [false, false, true, false, false, true]],
    [
      "$each_n counts only records reaching it",
      { "&ok": { $eq: true }, $each_n: 2 },
      [
        [1, { ok: "true" }],
        [2, { ok: "false" }],
        [3, { ok: "true" }],
        [4, { ok: "true" }],
      ],
      [false, false, true, false],
    ],
    ["$limit: 1", { $limit: 1 }, [[1], [2], [3]], [true, false, false]],
    [
      "$limit last counts only matching records",
      { "&score": { $gt: 10 }, $limit: 1 },
      [
        [1, { score: "5" }],
        [2, { score: "20" }],
        [3, { score: "30" }],
      ],
      [false, true, false],
    ],
    [
      "$limit first counts every record",
      { $limit: 1, "&score": { $gt: 10 } },
      [
        [1, { score: "5" }],
        [2, { score: "20" }],
      ],
      [false, false],
    ],
    [
      "$each_t: 1 (seconds), first record not selected",
      { $each_t: 1 },
      [[0], [S / 2], [S], [1.5 * S], [2 * S + 1]],
      [false, false, true, false, true],
    ],
    ["$each_t: duration literal", { $each_t: "1s" }, [[10 * S], [11 * S - 1], [11 * S], [12 * S]], [false, false, true, true]],
    ["$each_t: 0.5 (float seconds)", { $each_t: 0.5 }, [[0], [S / 2], [S]], [false, true, true]],
    ["$each_t: 0 selects every record", { $each_t: 0 }, [[5], [5], [6]], [true, true, true]],
    ["$each_t: time going backwards resets", { $each_t: "1s" }, [[S], [3 * S], [S], [2 * S]], [false, true, false, true]],
    [
      "$gate mirrors the condition inside the window, then needs a reset",
      { $gate: ["10s", "&on"] },
      [
        [0, { on: "true" }],
        [5 * S, { on: "false" }],
        [6 * S, { on: "true" }],
        [10 * S, { on: "true" }],
        [11 * S, { on: "false" }],
        [12 * S, { on: "true" }],
        [21 * S, { on: "true" }],
        [22 * S, { on: "true" }],
      ],
      [true, false, true, false, false, true, true, false],
    ],
    ["$gate with float seconds", { $gate: [0.1, true] }, [[0], [99_999], [100_000], [100_001]], [true, true, false, false]],
    ["$gate: time going backwards resets", { $gate: ["100ms", true] }, [[200_000], [300_000], [100_000]], [true, false, true]],
  ];
  it.each(cases)("%s", (_, when, rows, expected) => {
    expect(run(when, rows)).toEqual(expected);
  });

  it("$limit sets done, and nothing is selected afterwards", () => {
    const evaluator = createEvaluator(parseWhen({ $limit: 2 }), { strict: true });
    const record = { timestamp: 1, labels: {} };
    expect([evaluator.evaluate(record), evaluator.done]).toEqual([true, false]);
    expect([evaluator.evaluate(record), evaluator.done]).toEqual([true, false]);
    expect([evaluator.evaluate(record), evaluator.done]).toEqual([false, true]);
    expect(evaluator.evaluate(record)).toBe(false);
  });

  it("$limit inside a nested operator still stops the query", () => {
    const evaluator = createEvaluator(parseWhen({ $or: [{ $limit: 0 }, true] }), { strict: false });
    expect(evaluator.evaluate({ timestamp: 1, labels: {} })).toBe(false);
    expect(evaluator.done).toBe(true);
  });

  it("each evaluator (entry) has its own state; the parsed condition is shared", () => {
    const parsed = parseWhen({ $each_n: 2 });
    const a = createEvaluator(parsed, { strict: false });
    const b = createEvaluator(parsed, { strict: false });
    const record = { timestamp: 1, labels: {} };
    expect([a.evaluate(record), a.evaluate(record), b.evaluate(record), b.evaluate(record)]).toEqual([false, true, false, true]);
  });
});

describe("state snapshot and restore", () => {
  const WHEN = {
    "&kind": { $ne: "skip" },
    $each_n: 2,
    $gate: ["3s", { $each_t: "1s" }],
    $limit: 4,
  };

  const rows: Row[] = Array.from({ length: 40 }, (_, i) => [i * 400_000, { kind: i % 5 === 0 ? "skip" : "keep" }]);

  it("a restored evaluator continues exactly like an uninterrupted one", () => {
    const uninterrupted = createEvaluator(parseWhen(WHEN), { strict: false });
    const expected = rows.map(([timestamp, labels]) => uninterrupted.evaluate({ timestamp, labels: labels ?? {} }));
    expect(expected.filter(Boolean).length).toBe(4);
    expect(uninterrupted.done).toBe(true);

    for (const cut of [0, 1, 7, 13, 25, 39]) {
      const first = createEvaluator(parseWhen(WHEN), { strict: false });
      const before = rows.slice(0, cut).map(([timestamp, labels]) => first.evaluate({ timestamp, labels: labels ?? {} }));
      const stored: unknown = JSON.parse(JSON.stringify(first.snapshot()));
      const resumed = createEvaluator(parseWhen(WHEN), { strict: false, state: stored });
      const after = rows.slice(cut).map(([timestamp, labels]) => resumed.evaluate({ timestamp, labels: labels ?? {} }));
      expect([...before, ...after]).toEqual(expected);
      expect(resumed.done).toBe(true);
    }
  });

  it("the snapshot is plain JSON with one slot per stateful operator", () => {
    const evaluator = createEvaluator(parseWhen(WHEN), { strict: false });
    evaluator.evaluate({ timestamp: 1, labels: { kind: "keep" } });
    const snapshot = evaluator.snapshot();
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(snapshot).toEqual({
      version: 1,
      done: false,
      slots: [
        { op: "$each_n", count: 1 },
        { op: "$each_t", last: null },
        { op: "$gate", deadline: null, previous: false, resetRequired: false, lastTimestamp: null },
        { op: "$limit", count: 0 },
      ],
    });
  });

  it("the snapshot is a copy, not a live view", () => {
    const evaluator = createEvaluator(parseWhen({ $each_n: 2 }), { strict: false });
    const snapshot = evaluator.snapshot();
    evaluator.evaluate({ timestamp: 1, labels: {} });
    expect(snapshot.slots[0]).toEqual({ op: "$each_n", count: 0 });
  });

  it("done survives a restore", () => {
    const parsed = parseWhen({ $limit: 0 });
    const evaluator = createEvaluator(parsed, { strict: false });
    evaluator.evaluate({ timestamp: 1, labels: {} });
    const resumed = createEvaluator(parsed, { strict: false, state: evaluator.snapshot() });
    expect(resumed.done).toBe(true);
    expect(resumed.evaluate({ timestamp: 2, labels: {} })).toBe(false);
  });

  const valid: EvaluatorState = { version: 1, done: false, slots: [{ op: "$each_n", count: 0 }] };
  const invalidStates: Array<[string, unknown]> = [
    ["null", null],
    ["a string", "state"],
    ["wrong version", { ...valid, version: 2 }],
    ["missing done", { version: 1, slots: valid.slots }],
    ["slots not an array", { ...valid, slots: {} }],
    ["too many slots", { ...valid, slots: [...valid.slots, { op: "$limit", count: 0 }] }],
    ["no slots", { ...valid, slots: [] }],
    ["wrong slot kind", { ...valid, slots: [{ op: "$limit", count: 0 }] }],
    ["negative count", { ...valid, slots: [{ op: "$each_n", count: -1 }] }],
    ["fractional count", { ...valid, slots: [{ op: "$each_n", count: 0.5 }] }],
    ["slot is null", { ...valid, slots: [null] }],
  ];
  it.each(invalidStates)("rejects a state that does not match the condition: %s", (_, state) => {
    const parsed = parseWhen({ $each_n: 2 });
    expect(createEvaluator(parsed, { strict: false, state: valid }).done).toBe(false);
    expect(thrown(() => createEvaluator(parsed, { strict: false, state }))).toMatchObject({
      status: 400,
      message: "Evaluator state does not match the condition",
    });
  });
});

describe("bad records are rejected with 400 even in non-strict mode", () => {
  const cases: Array<[string, unknown, string]> = [
    ["negative timestamp", { timestamp: -1, labels: {} }, "Record timestamp must be a non-negative safe integer (µs)"],
    ["fractional timestamp", { timestamp: 1.5, labels: {} }, "Record timestamp must be a non-negative safe integer (µs)"],
    ["string timestamp", { timestamp: "1", labels: {} }, "Record timestamp must be a non-negative safe integer (µs)"],
    ["unsafe timestamp", { timestamp: 2 ** 60, labels: {} }, "Record timestamp must be a non-negative safe integer (µs)"],
    ["null labels", { timestamp: 1, labels: null }, "Record labels must be an object"],
    ["null record", null, "Record must be an object"],
  ];
  it.each(cases)("%s", (_, record, message) => {
    const evaluator = createEvaluator(parseWhen({}), { strict: false });
    expect(thrown(() => evaluator.evaluate(record as never))).toMatchObject({ status: 400, message });
  });
});
