/**
 * The condition tree: an immutable node graph produced once by the parser and shared by every
 * evaluator. Per-entry mutable state of stateful operators lives outside the tree, in numbered
 * slots owned by an evaluator, so the same parsed condition serves many entries and the state can
 * be serialised as plain JSON. This file holds the node contract and the leaf nodes.
 */

import { notFound } from "./errors";
import { parseLabelValue, type Value } from "./values";

/** State of one stateful operator for one entry. Plain JSON, see `evaluator.ts`. */
export type SlotState =
  | { op: "$each_n"; count: number }
  | { op: "$each_t"; last: number | null }
  | { op: "$limit"; count: number }
  | { op: "$gate"; deadline: number | null; previous: boolean; resetRequired: boolean; lastTimestamp: number | null };

export type SlotKind = SlotState["op"];

/** What a node sees while evaluating one record. */
export interface EvalContext {
  /** Record timestamp in µs (a safe non-negative integer). */
  readonly timestamp: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Slot states of this evaluator, indexed by the slot numbers assigned at parse time. */
  readonly slots: SlotState[];
}

export interface Node {
  /** Human-readable name for debugging (`$eq`, `const`, `&label`…). */
  readonly name: string;
  /** Set only on constant nodes, so builders can validate constant operands at parse time. */
  readonly constant?: Value;
  evaluate(context: EvalContext): Value;
}

export function constantNode(value: Value): Node {
  return { name: "const", constant: value, evaluate: () => value };
}

/** Looks up a label without ever reaching `Object.prototype` (`&constructor` must be "missing"). */
export function lookupLabel(labels: Readonly<Record<string, string>>, name: string): string | undefined {
  if (!Object.hasOwn(labels, name)) return undefined;
  const value = labels[name];
  return typeof value === "string" ? value : undefined;
}

/** `"&name"`: the parsed value of label `name`; missing → 404 `Reference 'name' not found`. */
export function referenceNode(labelName: string): Node {
  return {
    name: `&${labelName}`,
    evaluate(context) {
      const raw = lookupLabel(context.labels, labelName);
      if (raw === undefined) throw notFound(`Reference '${labelName}' not found`);
      return parseLabelValue(raw);
    },
  };
}

/** `"@name"`: computed labels come from extensions; with none installed the reference is missing. */
export function computedReferenceNode(labelName: string): Node {
  return {
    name: `@${labelName}`,
    evaluate() {
      throw notFound(`Reference '@${labelName}' not found`);
    },
  };
}

/** Allocates state slots while the tree is built; the evaluator creates initial states from the kinds. */
export class SlotAllocator {
  readonly kinds: SlotKind[] = [];

  allocate(kind: SlotKind): number {
    this.kinds.push(kind);
    return this.kinds.length - 1;
  }
}

export function initialSlotState(kind: SlotKind): SlotState {
  switch (kind) {
    case "$each_n":
      return { op: "$each_n", count: 0 };
    case "$each_t":
      return { op: "$each_t", last: null };
    case "$limit":
      return { op: "$limit", count: 0 };
    case "$gate":
      return { op: "$gate", deadline: null, previous: false, resetRequired: false, lastTimestamp: null };
  }
}
