/**
 * Comparison operators: `$eq $ne $gt $gte $lt $lte`, exactly two operands. Equality and
 * ordering follow ReductStore: numbers (Bool, Int, Float, Duration) compare with each other, strings only
 * with strings; an incomparable pair is unequal and never ordered.
 */

import type { Node } from "../nodes";
import { boolValue, compareValues } from "../values";
import { type OperatorBuilder, requireExactly } from "./operator";

type Ordering = -1 | 0 | 1 | undefined;

function comparison(test: (ordering: Ordering) => boolean): OperatorBuilder {
  return (name, operands): Node => {
    requireExactly(name, operands, 2);
    const [left, right] = operands as [Node, Node];
    return {
      name,
      evaluate(context) {
        const a = left.evaluate(context);
        return boolValue(test(compareValues(a, right.evaluate(context))));
      },
    };
  };
}

export const COMPARISON_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $eq: comparison((ordering) => ordering === 0),
  $ne: comparison((ordering) => ordering !== 0),
  $gt: comparison((ordering) => ordering === 1),
  $gte: comparison((ordering) => ordering === 1 || ordering === 0),
  $lt: comparison((ordering) => ordering === -1),
  $lte: comparison((ordering) => ordering === -1 || ordering === 0),
};
