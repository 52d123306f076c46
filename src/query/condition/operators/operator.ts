/**
 * The contract every operator family implements: a builder that validates arity (and, where the
 * operand is a constant, its value) at parse time and returns an immutable node. Arity messages
 * follow the reference (`$eq requires exactly two operands`).
 */

import { unprocessable } from "../errors";
import type { Node, SlotAllocator } from "../nodes";

export interface BuildContext {
  readonly slots: SlotAllocator;
}

/** `name` is the operator as written (aliases keep their own name in messages). */
export type OperatorBuilder = (name: string, operands: Node[], context: BuildContext) => Node;

const COUNT_WORDS = ["no", "one", "two"] as const;

function countWord(count: number): string {
  return COUNT_WORDS[count] ?? String(count);
}

export function requireExactly(name: string, operands: readonly Node[], count: number): void {
  if (operands.length === count) return;
  if (count === 0) throw unprocessable(`${name} requires no operands`);
  throw unprocessable(`${name} requires exactly ${countWord(count)} operand${count === 1 ? "" : "s"}`);
}

export function requireAtLeast(name: string, operands: readonly Node[], count: number, noun = "requires"): void {
  if (operands.length >= count) return;
  throw unprocessable(`${name} ${noun} at least ${countWord(count)} operand${count === 1 ? "" : "s"}`);
}
