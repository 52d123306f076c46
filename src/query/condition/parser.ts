/**
 * Turns the `when` JSON into an immutable condition tree plus typed directives. Malformed
 * input fails here, at query creation, with the reference's 422 messages. Nesting depth and node
 * count are capped so hostile input cannot exhaust the stack or the CPU budget of a request.
 */

import { type Directives, parseDirective } from "./directives";
import { asConditionError, ConditionError, unprocessable } from "./errors";
import { computedReferenceNode, constantNode, type Node, referenceNode, SlotAllocator, type SlotKind } from "./nodes";
import { allOf } from "./operators/logical";
import type { BuildContext } from "./operators/operator";
import { findOperator } from "./operators/registry";
import { boolValue, durationValue, floatValue, intValue, parseDurationLiteral, stringValue, type Value } from "./values";

/** Deepest JSON nesting (objects and arrays) accepted in `when`; the top-level object is level 1. */
export const MAX_DEPTH = 32;
/** Most operands and operators one condition may contain. */
export const MAX_NODES = 1_000;
const PREVIEW_CHARS = 200;
const PREVIEW_DEPTH = 8;

export interface ParsedWhen {
  /** All top-level conditions ANDed in key order; evaluates to a Bool. */
  readonly root: Node;
  readonly directives: Readonly<Directives>;
  /** Kinds of the stateful-operator slots, in allocation order; an evaluator's state mirrors it. */
  readonly slotKinds: readonly SlotKind[];
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** A compact JSON rendering for error messages, bounded in length and depth whatever the input. */
export function previewJson(value: unknown): string {
  let out = "";
  const write = (item: unknown, depth: number): void => {
    if (out.length > PREVIEW_CHARS) return;
    if (depth > PREVIEW_DEPTH) {
      out += "…";
      return;
    }
    if (Array.isArray(item)) {
      out += "[";
      for (let i = 0; i < item.length && out.length <= PREVIEW_CHARS; i++) {
        if (i > 0) out += ",";
        write(item[i], depth + 1);
      }
      out += "]";
    } else if (isObject(item)) {
      out += "{";
      let first = true;
      for (const key in item) {
        if (!Object.hasOwn(item, key)) continue;
        if (out.length > PREVIEW_CHARS) break;
        if (!first) out += ",";
        first = false;
        out += `${JSON.stringify(key.slice(0, PREVIEW_CHARS))}:`;
        write(item[key], depth + 1);
      }
      out += "}";
    } else if (typeof item === "string") {
      out += JSON.stringify(item.slice(0, PREVIEW_CHARS));
    } else if (typeof item === "number" || typeof item === "boolean") {
      out += String(item);
    } else {
      out += "null";
    }
  };
  write(value, 0);
  return out.length > PREVIEW_CHARS ? `${out.slice(0, PREVIEW_CHARS)}…` : out;
}

/** Operators that take no operands: as a key they are the left operand of object notation. */
const NULLARY_OPERATORS: ReadonlySet<string> = new Set(["$timestamp", "$id"]);

/**
 * Whether `"<key>": {…}` is unary shorthand (the object is a nested condition)
 * rather than object notation (form 1). A key naming an operator that takes operands can only be
 * meant as shorthand, `{"$not": {"&flag": {"$eq": true}}}`; every other key (a label reference, a
 * constant, or `$timestamp`/`$id`, as in `{"$timestamp": {"$gte": 1000}}`) is a left operand.
 */
function isUnaryShorthand(key: string): boolean {
  return !key.startsWith("$$") && !NULLARY_OPERATORS.has(key) && findOperator(key) !== undefined;
}

class Parser {
  private nodeCount = 0;
  private readonly slots = new SlotAllocator();
  private readonly buildContext: BuildContext = { slots: this.slots };

  parse(json: unknown): ParsedWhen {
    const directives: Directives = {};
    let root: Node;
    if (isObject(json)) {
      this.enter(1);
      const conditions: Array<[string, unknown]> = [];
      for (const [key, value] of Object.entries(json)) {
        if (key.startsWith("#")) parseDirective(key, value, directives);
        else conditions.push([key, value]);
      }
      root = allOf("$and", this.parseEntries(conditions, 1));
    } else {
      root = allOf("$and", [this.parseOperand(json, 1)]);
    }
    return { root, directives, slotKinds: [...this.slots.kinds] };
  }

  private enter(depth: number): void {
    if (depth > MAX_DEPTH) throw unprocessable(`Condition is nested too deeply (more than ${MAX_DEPTH} levels)`);
  }

  private countNode(): void {
    this.nodeCount += 1;
    if (this.nodeCount > MAX_NODES) throw unprocessable(`Condition is too large (more than ${MAX_NODES} nodes)`);
  }

  /** The pairs of one object (at nesting level `depth`), each becoming one expression. */
  private parseEntries(entries: ReadonlyArray<[string, unknown]>, depth: number): Node[] {
    const expressions: Node[] = [];
    for (const [key, value] of entries) {
      if (Array.isArray(value)) {
        // Array notation: {"$op": [a, b, …]}
        this.enter(depth + 1);
        const operands: Node[] = [];
        for (const item of value) operands.push(this.parseOperand(item, depth + 2));
        expressions.push(this.build(key, operands));
      } else if (isObject(value) && !isUnaryShorthand(key)) {
        // Object notation: {"<left>": {"$op": <right>}}
        this.enter(depth + 1);
        const left = this.parseLiteral(key);
        const pairs = Object.entries(value);
        const [pair] = pairs;
        if (pairs.length !== 1 || pair === undefined) throw unprocessable("Object notation must have exactly one operator");
        const [operator, right] = pair;
        expressions.push(this.build(operator, [left, this.parseOperand(right, depth + 2)]));
      } else {
        // Unary shorthand: {"$op": <scalar or nested condition>}
        expressions.push(this.build(key, [this.parseOperand(value, depth + 1)]));
      }
    }
    return expressions;
  }

  /** One operand at nesting level `depth` (only containers use the level). */
  private parseOperand(json: unknown, depth: number): Node {
    this.countNode();
    if (typeof json === "string") return this.parseLiteral(json);
    if (typeof json === "boolean") return constantNode(boolValue(json));
    if (typeof json === "number") return constantNode(numberValue(json));
    if (json === null) throw unprocessable("Null type is not supported: null");
    if (Array.isArray(json)) throw unprocessable(`Array type is not supported: ${previewJson(json)}`);
    if (isObject(json)) {
      this.enter(depth);
      const expressions = this.parseEntries(Object.entries(json), depth);
      const [only] = expressions;
      return expressions.length === 1 && only !== undefined ? only : allOf("$and", expressions);
    }
    throw unprocessable(`Unsupported JSON value of type ${typeof json}`);
  }

  private parseLiteral(text: string): Node {
    if (text.startsWith("&")) return referenceNode(text.slice(1));
    if (text.startsWith("@")) return computedReferenceNode(text.slice(1));
    if (text.startsWith("$$")) return constantNode(stringValue(text.slice(1)));
    if (text.startsWith("$")) {
      const builder = findOperator(text);
      if (builder !== undefined) {
        try {
          return builder(text, [], this.buildContext);
        } catch (error) {
          if (!(error instanceof ConditionError)) throw error;
        }
      }
      throw unprocessable(`Unknown '$' literal '${text}'; use '$$' to escape a string value`);
    }
    const duration = parseDurationLiteral(text);
    return constantNode(duration === undefined ? stringValue(text) : durationValue(duration));
  }

  private build(operator: string, operands: Node[]): Node {
    this.countNode();
    if (!operator.startsWith("$")) throw unprocessable(`Operator '${operator}' must start with '$'`);
    const builder = findOperator(operator);
    if (builder === undefined) throw unprocessable(`Operator '${operator}' not supported`);
    return builder(operator, operands, this.buildContext);
  }
}

function numberValue(value: number): Value {
  if (!Number.isFinite(value)) throw unprocessable(`Unsupported JSON number: ${value}`);
  if (!Number.isInteger(value)) return floatValue(value);
  if (!Number.isSafeInteger(value)) {
    throw unprocessable(`Integer ${value} is outside the safe range (±${Number.MAX_SAFE_INTEGER})`);
  }
  return intValue(BigInt(value));
}

/**
 * Parses a `when` value. Throws only `ConditionError` (422 for every malformed input).
 * `null`/absent `when` should be handled by the caller as "no condition".
 */
export function parseWhen(json: unknown): ParsedWhen {
  try {
    return new Parser().parse(json);
  } catch (error) {
    throw asConditionError(error);
  }
}
