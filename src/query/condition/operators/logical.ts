/**
 * Logical operators, any number of operands evaluated left to right with short-circuit:
 * `$and`/`$all_of`, `$or`/`$any_of`, `$not`/`$none_of`, `$xor`/`$one_of`, and the membership tests
 * `$in`/`$nin` (first operand against the rest, at least two operands).
 */

import type { EvalContext, Node } from "../nodes";
import { boolValue, FALSE, isTruthy, TRUE, valuesEqual } from "../values";
import { type OperatorBuilder, requireAtLeast } from "./operator";

/** Also the root of every parsed condition: top-level pairs are ANDed in key order. */
export function allOf(name: string, operands: readonly Node[]): Node {
  return {
    name,
    evaluate(context) {
      for (const operand of operands) {
        if (!isTruthy(operand.evaluate(context))) return FALSE;
      }
      return TRUE;
    },
  };
}

const anyOf: OperatorBuilder = (name, operands) => ({
  name,
  evaluate(context) {
    for (const operand of operands) {
      if (isTruthy(operand.evaluate(context))) return TRUE;
    }
    return FALSE;
  },
});

const noneOf: OperatorBuilder = (name, operands) => ({
  name,
  evaluate(context) {
    for (const operand of operands) {
      if (isTruthy(operand.evaluate(context))) return FALSE;
    }
    return TRUE;
  },
});

/** Exactly one truthy operand; stops at the second truthy one. */
const oneOf: OperatorBuilder = (name, operands) => ({
  name,
  evaluate(context) {
    let truthy = 0;
    for (const operand of operands) {
      if (isTruthy(operand.evaluate(context))) {
        truthy += 1;
        if (truthy > 1) return FALSE;
      }
    }
    return boolValue(truthy === 1);
  },
});

function isMember(first: Node, rest: readonly Node[], context: EvalContext): boolean {
  const needle = first.evaluate(context);
  for (const candidate of rest) {
    if (valuesEqual(needle, candidate.evaluate(context))) return true;
  }
  return false;
}

function membership(negate: boolean): OperatorBuilder {
  return (name, operands) => {
    requireAtLeast(name, operands, 2, "operator requires");
    const [first, ...rest] = operands as [Node, ...Node[]];
    return {
      name,
      evaluate: (context) => boolValue(isMember(first, rest, context) !== negate),
    };
  };
}

export const LOGICAL_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $and: (name, operands) => allOf(name, operands),
  $all_of: (name, operands) => allOf(name, operands),
  $or: anyOf,
  $any_of: anyOf,
  $not: noneOf,
  $none_of: noneOf,
  $xor: oneOf,
  $one_of: oneOf,
  $in: membership(false),
  $nin: membership(true),
};
