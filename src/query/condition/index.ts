/**
 * The conditional query language `when` as a pure module: no Workers APIs, no I/O.
 *
 * Usage (inside the bucket Durable Object, per query):
 *
 *   const parsed = parseWhen(query.when);            // at creation: 422 ConditionError if malformed
 *   const evaluator = createEvaluator(parsed, { strict: query.strict });   // one per entry
 *   for (const row of indexRows) {                   // ascending timestamps of that entry
 *     if (evaluator.done) break;                     // `$limit` stopped this entry
 *     if (evaluator.evaluate({ timestamp: row.ts, labels: row.labels })) select(row);
 *   }
 *   persist(evaluator.snapshot());                   // plain JSON
 *   // after a restart: createEvaluator(parseWhen(sameWhen), { strict, state: savedSnapshot })
 *
 * - `parseWhen(json)` returns the condition tree, the typed directives (`#ctx_before`, `#ctx_after`,
 *   `#select_labels`, `#batch_*`, `#record_timeout`, `#io_timeout`) and the stateful slots. A `null`
 *   or absent `when` means "no condition" and should not be passed in (it is a 422 here, as a null
 *   operand is).
 * - `evaluate(record)` returns whether the record is selected. In strict mode an evaluation error
 *   throws its `ConditionError` (404 for a missing label, 422 otherwise); in non-strict mode the
 *   record is just not selected. Once `$limit` is exceeded `done` is true and nothing more is
 *   selected.
 * - Every failure is a `ConditionError { status: 400 | 404 | 422, message }`; 400 means the caller
 *   passed a bad record or state snapshot. Nothing else is ever thrown.
 *
 * Where this port differs from the reference on purpose:
 * - `"$op": {…}` with an operator taking operands is unary shorthand; only other
 *   keys (labels, constants, `$timestamp`/`$id`) start object notation. A nested object with several
 *   keys is one ANDed operand (the reference splices them into the operand list).
 * - Constant operands are checked at parse time: divisor 0, `$cast` type, time zone, `$each_n: 0`,
 *   non-numeric `$limit`/`$each_t`/`$gate` spans → 422 at creation instead of per record.
 * - Int arithmetic is checked against i64 (`Integer overflow in $add`) instead of wrapping.
 * - Duration literals are strictly `-?<digits><unit>` parts; JSON integers beyond ±2^53−1 are a 422;
 *   a JSON `1.0` arrives from `JSON.parse` as the Int 1.
 * - Directive values are validated by type (`#select_labels: ["1h"]` stays a label name).
 * - Nesting deeper than `MAX_DEPTH` JSON levels or more than `MAX_NODES` nodes → 422.
 */

export type { ContextSpan, Directives } from "./directives";
export { DIRECTIVE_NAMES } from "./directives";
export type { ConditionErrorStatus } from "./errors";
export { ConditionError } from "./errors";
export type { ConditionRecord, Evaluator, EvaluatorOptions, EvaluatorState } from "./evaluator";
export { createEvaluator } from "./evaluator";
export type { SlotKind, SlotState } from "./nodes";
export { OPERATOR_NAMES } from "./operators/registry";
export type { ParsedWhen } from "./parser";
export { MAX_DEPTH, MAX_NODES, parseWhen } from "./parser";
