/**
 * Arithmetic operators: `$add $sub $mult $div $div_num $rem $abs`. Results are Int or
 * Float (Bool counts as 0/1, Duration as Int µs). Int results are checked against the i64 range
 * (the reference would wrap or panic); type errors carry the reference's messages. A constant zero
 * divisor is rejected when the condition is parsed, a computed one when it is evaluated.
 */

import { unprocessable } from "../errors";
import type { Node } from "../nodes";
import { floatValue, intValue, isInI64Range, numeric, TYPE_NAMES, toFloat, toInt, type Value } from "../values";
import { type OperatorBuilder, requireExactly } from "./operator";

type NonString = Exclude<Value, { type: "string" }>;

function checkedInt(name: string, value: bigint): Value {
  if (!isInI64Range(value)) throw unprocessable(`Integer overflow in ${name}`);
  return intValue(value);
}

/** Applies an int or float operation after the numeric promotion of both operands. */
function numericOp(
  name: string,
  left: NonString,
  right: NonString,
  onInt: (a: bigint, b: bigint) => bigint,
  onFloat: (a: number, b: number) => number,
): Value {
  const a = numeric(left);
  const b = numeric(right);
  if (a.kind === "int" && b.kind === "int") return checkedInt(name, onInt(a.value, b.value));
  return floatValue(onFloat(Number(a.value), Number(b.value)));
}

export function add(name: string, left: Value, right: Value): Value {
  if (left.type === "string" && right.type === "string") return { type: "string", value: left.value + right.value };
  if (right.type === "string") throw unprocessable(`Cannot add ${TYPE_NAMES[left.type]} to string`);
  if (left.type === "string") throw unprocessable(`Cannot add string to ${TYPE_NAMES[right.type]}`);
  return numericOp(
    name,
    left,
    right,
    (a, b) => a + b,
    (a, b) => a + b,
  );
}

export function subtract(name: string, left: Value, right: Value): Value {
  if (left.type === "string" && right.type === "string") throw unprocessable("Cannot subtract string");
  if (right.type === "string") throw unprocessable(`Cannot subtract string from ${TYPE_NAMES[left.type]}`);
  if (left.type === "string") throw unprocessable(`Cannot subtract string from ${TYPE_NAMES[right.type]}`);
  return numericOp(
    name,
    left,
    right,
    (a, b) => a - b,
    (a, b) => a - b,
  );
}

export function multiply(name: string, left: Value, right: Value): Value {
  if (left.type === "string") throw unprocessable(`Cannot multiply string by ${TYPE_NAMES[right.type]}`);
  if (right.type === "string") throw unprocessable(`Cannot multiply ${TYPE_NAMES[left.type]} by string`);
  return numericOp(
    name,
    left,
    right,
    (a, b) => a * b,
    (a, b) => a * b,
  );
}

function rejectStringDivision(left: Value, right: Value): void {
  if (left.type === "string") throw unprocessable("Cannot divide string");
  if (right.type === "string") throw unprocessable("Cannot divide by string");
}

export function divide(left: Value, right: Value): Value {
  rejectStringDivision(left, right);
  const divisor = toFloat(right);
  if (divisor === 0) throw unprocessable("Cannot divide by zero");
  return floatValue(toFloat(left) / divisor);
}

export function divideIntegers(name: string, left: Value, right: Value): Value {
  rejectStringDivision(left, right);
  const divisor = toInt(right);
  if (divisor === 0n) throw unprocessable("Cannot divide by zero");
  return checkedInt(name, toInt(left) / divisor);
}

export function remainder(name: string, left: Value, right: Value): Value {
  if (left.type === "string") {
    throw unprocessable(right.type === "string" ? "Cannot divide string" : `Cannot divide string by ${TYPE_NAMES[right.type]}`);
  }
  if (right.type === "string") throw unprocessable(`Cannot divide ${TYPE_NAMES[left.type]} by string`);
  return numericOp(
    name,
    left,
    right,
    (a, b) => {
      if (b === 0n) throw unprocessable("Cannot divide by zero");
      return a % b;
    },
    (a, b) => a % b,
  );
}

export function absolute(name: string, value: Value): Value {
  switch (value.type) {
    case "string":
      throw unprocessable("Cannot calculate absolute value of a string");
    case "float":
      return floatValue(Math.abs(value.value));
    case "bool":
      return intValue(value.value ? 1n : 0n);
    default:
      return checkedInt(name, value.value < 0n ? -value.value : value.value);
  }
}

/** n-ary fold (`$add`, `$mult`): no operands → Int 0, else left to right from the first operand. */
function fold(op: (name: string, left: Value, right: Value) => Value): OperatorBuilder {
  return (name, operands) => ({
    name,
    evaluate(context) {
      const [first, ...rest] = operands;
      if (first === undefined) return intValue(0n);
      let result = first.evaluate(context);
      for (const operand of rest) result = op(name, result, operand.evaluate(context));
      return result;
    },
  });
}

/** Validates a constant divisor at parse time; `check` throws for an invalid one. */
function binary(op: (name: string, left: Value, right: Value) => Value, check?: (divisor: Value) => void): OperatorBuilder {
  return (name, operands) => {
    requireExactly(name, operands, 2);
    const [left, right] = operands as [Node, Node];
    if (check !== undefined && right.constant !== undefined) check(right.constant);
    return {
      name,
      evaluate(context) {
        const a = left.evaluate(context);
        return op(name, a, right.evaluate(context));
      },
    };
  };
}

function rejectZero(isZero: (divisor: NonString) => boolean): (divisor: Value) => void {
  return (divisor) => {
    if (divisor.type !== "string" && isZero(divisor)) throw unprocessable("Cannot divide by zero");
  };
}

export const ARITHMETIC_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $add: fold(add),
  $mult: fold(multiply),
  $sub: binary(subtract),
  $div: binary(
    (_, a, b) => divide(a, b),
    rejectZero((divisor) => toFloat(divisor) === 0),
  ),
  $div_num: binary(
    divideIntegers,
    rejectZero((divisor) => toInt(divisor) === 0n),
  ),
  $rem: binary(
    remainder,
    rejectZero((divisor) => divisor.type !== "float" && toInt(divisor) === 0n),
  ),
  $abs: (name, operands) => {
    requireExactly(name, operands, 1);
    const [operand] = operands as [Node];
    return { name, evaluate: (context) => absolute(name, operand.evaluate(context)) };
  },
};
