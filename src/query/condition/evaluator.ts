/**
 * Runs a parsed condition over the records of one entry, in timestamp order, keeping the state of
 * stateful operators (`$each_n`, `$each_t`, `$limit`, `$gate`) between calls. The state is plain
 * JSON (`snapshot()`), so a query cursor can be persisted and resumed after a Durable Object restart
 * by re-parsing the same `when` and passing the snapshot back.
 */

import { asConditionError, badInput, ConditionError, LimitReached } from "./errors";
import { type EvalContext, initialSlotState, type SlotKind, type SlotState } from "./nodes";
import type { ParsedWhen } from "./parser";
import { isTruthy } from "./values";

export interface ConditionRecord {
  /** Record timestamp in µs. */
  readonly timestamp: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface EvaluatorState {
  readonly version: 1;
  readonly done: boolean;
  readonly slots: SlotState[];
}

export interface EvaluatorOptions {
  /** true: evaluation errors throw; false: the record is simply not selected. */
  readonly strict: boolean;
  /** A snapshot from `Evaluator.snapshot()` of an evaluator of the same condition. */
  readonly state?: unknown;
}

export interface Evaluator {
  /** Whether the record is selected. Throws `ConditionError` only in strict mode (or for bad input). */
  evaluate(record: ConditionRecord): boolean;
  /** true once `$limit` stopped the query: no further record of this entry is selected. */
  readonly done: boolean;
  /** The current state as plain JSON. */
  snapshot(): EvaluatorState;
}

const STATE_VERSION = 1;

const isSafeIntegerOrNull = (value: unknown): boolean =>
  value === null || (typeof value === "number" && Number.isSafeInteger(value));
const isCount = (value: unknown): boolean => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

function isSlotState(value: unknown, kind: SlotKind): value is SlotState {
  if (typeof value !== "object" || value === null) return false;
  const slot = value as Record<string, unknown>;
  if (slot.op !== kind) return false;
  switch (kind) {
    case "$each_n":
    case "$limit":
      return isCount(slot.count);
    case "$each_t":
      return isSafeIntegerOrNull(slot.last);
    case "$gate":
      return (
        isSafeIntegerOrNull(slot.deadline) &&
        typeof slot.previous === "boolean" &&
        typeof slot.resetRequired === "boolean" &&
        isSafeIntegerOrNull(slot.lastTimestamp)
      );
  }
}

function restoreState(state: unknown, kinds: readonly SlotKind[]): { done: boolean; slots: SlotState[] } {
  const invalid = () => badInput("Evaluator state does not match the condition");
  if (typeof state !== "object" || state === null) throw invalid();
  const { version, done, slots } = state as Record<string, unknown>;
  if (version !== STATE_VERSION || typeof done !== "boolean" || !Array.isArray(slots) || slots.length !== kinds.length) {
    throw invalid();
  }
  const restored: SlotState[] = [];
  kinds.forEach((kind, index) => {
    const slot: unknown = slots[index];
    if (!isSlotState(slot, kind)) throw invalid();
    restored.push({ ...slot });
  });
  return { done, slots: restored };
}

function checkRecord(record: ConditionRecord): void {
  if (typeof record !== "object" || record === null) throw badInput("Record must be an object");
  const { timestamp, labels } = record;
  if (typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw badInput("Record timestamp must be a non-negative safe integer (µs)");
  }
  if (typeof labels !== "object" || labels === null) throw badInput("Record labels must be an object");
}

/** Creates the per-entry evaluator of a parsed condition (one per entry in a multi-entry query). */
export function createEvaluator(parsed: ParsedWhen, options: EvaluatorOptions): Evaluator {
  const strict = options.strict;
  let { done, slots } =
    options.state === undefined
      ? { done: false, slots: parsed.slotKinds.map(initialSlotState) }
      : restoreState(options.state, parsed.slotKinds);

  return {
    get done() {
      return done;
    },
    evaluate(record) {
      checkRecord(record);
      if (done) return false;
      const context: EvalContext = { timestamp: record.timestamp, labels: record.labels, slots };
      try {
        return isTruthy(parsed.root.evaluate(context));
      } catch (error) {
        if (error instanceof LimitReached) {
          done = true;
          return false;
        }
        if (error instanceof ConditionError && !strict) return false;
        throw asConditionError(error);
      }
    },
    snapshot() {
      return { version: STATE_VERSION, done, slots: slots.map((slot) => ({ ...slot })) };
    },
  };
}
