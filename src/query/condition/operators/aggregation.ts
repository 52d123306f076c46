/**
 * Stateful operators: `$each_n`, `$each_t`, `$limit`, `$gate`. Their state is per entry
 * and lives in evaluator-owned slots (allocated here at parse time), never in the node itself, so
 * a parsed condition can be shared and the state serialised. `$limit` stops the query by throwing
 * `LimitReached`, which only the evaluator catches.
 */

import { LimitReached, unprocessable } from "../errors";
import type { EvalContext, Node, SlotKind, SlotState } from "../nodes";
import { boolValue, isTruthy, TRUE, toFloat, toInt, truncateToI64, type Value } from "../values";
import { type OperatorBuilder, requireExactly } from "./operator";

const MAX_SAFE_US = BigInt(Number.MAX_SAFE_INTEGER);

function slotState<K extends SlotKind>(context: EvalContext, index: number, kind: K): Extract<SlotState, { op: K }> {
  const state = context.slots[index];
  if (state === undefined || state.op !== kind) throw unprocessable(`Evaluator state has no ${kind} slot ${index}`);
  return state as Extract<SlotState, { op: K }>;
}

/** A span operand in µs: a Duration as is, any other number as seconds; negative → 0 (as `u64`). */
export function spanMicros(value: Value): bigint {
  const us = value.type === "duration" ? value.value : truncateToI64(toFloat(value) * 1_000_000);
  return us < 0n ? 0n : us;
}

function eachNDivisor(name: string, value: Value): bigint {
  const n = toInt(value);
  if (n === 0n) throw unprocessable(`Value '0' is not a valid operand for ${name}`);
  return n;
}

const eachN: OperatorBuilder = (name, operands, { slots }) => {
  requireExactly(name, operands, 1);
  const [operand] = operands as [Node];
  if (operand.constant !== undefined) eachNDivisor(name, operand.constant);
  const slot = slots.allocate("$each_n");
  return {
    name,
    evaluate(context) {
      const state = slotState(context, slot, "$each_n");
      state.count += 1;
      const n = eachNDivisor(name, operand.evaluate(context));
      return boolValue(BigInt(state.count) % n === 0n);
    },
  };
};

const eachT: OperatorBuilder = (name, operands, { slots }) => {
  requireExactly(name, operands, 1);
  const [operand] = operands as [Node];
  if (operand.constant !== undefined) spanMicros(operand.constant);
  const slot = slots.allocate("$each_t");
  return {
    name,
    evaluate(context) {
      const state = slotState(context, slot, "$each_t");
      const now = context.timestamp;
      if (state.last === null || now < state.last) state.last = now;
      const span = spanMicros(operand.evaluate(context));
      const selected = BigInt(now - state.last) >= span;
      if (selected) state.last = now;
      return boolValue(selected);
    },
  };
};

const limit: OperatorBuilder = (name, operands, { slots }) => {
  requireExactly(name, operands, 1);
  const [operand] = operands as [Node];
  if (operand.constant !== undefined) toInt(operand.constant);
  const slot = slots.allocate("$limit");
  return {
    name,
    evaluate(context) {
      const state = slotState(context, slot, "$limit");
      state.count += 1;
      if (BigInt(state.count) > toInt(operand.evaluate(context))) throw new LimitReached();
      return TRUE;
    },
  };
};

/**
 * Edge-triggered window: a false→true edge of the condition opens a window of the given span;
 * inside it the output mirrors the condition; once it closes the output stays false until the
 * condition has been false once. Time going backwards resets the gate.
 */
const gate: OperatorBuilder = (name, operands, { slots }) => {
  requireExactly(name, operands, 2);
  const [spanOperand, condition] = operands as [Node, Node];
  if (spanOperand.constant !== undefined) spanMicros(spanOperand.constant);
  const slot = slots.allocate("$gate");
  return {
    name,
    evaluate(context) {
      const state = slotState(context, slot, "$gate");
      const now = context.timestamp;
      if (state.lastTimestamp !== null && now < state.lastTimestamp) {
        state.deadline = null;
        state.previous = false;
        state.resetRequired = false;
      }
      state.lastTimestamp = now;

      const span = spanMicros(spanOperand.evaluate(context));
      const input = isTruthy(condition.evaluate(context));

      if (state.deadline !== null && now >= state.deadline) {
        state.deadline = null;
        state.resetRequired = true;
      }
      if (state.resetRequired) {
        if (!input) state.resetRequired = false;
        state.previous = input;
        return boolValue(false);
      }
      if (state.deadline === null && !state.previous && input) {
        const deadline = BigInt(now) + span;
        state.deadline = Number(deadline > MAX_SAFE_US ? MAX_SAFE_US : deadline);
      }
      const output = state.deadline !== null && now < state.deadline ? input : false;
      state.previous = input;
      return boolValue(output);
    },
  };
};

export const AGGREGATION_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $each_n: eachN,
  $each_t: eachT,
  $limit: limit,
  $gate: gate,
};
