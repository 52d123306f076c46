/**
 * Miscellaneous operators: `$exists`/`$has` (operands name labels), `$cast` (convert to
 * bool/int/float/string/duration), `$ref` (label by computed name) and `$timestamp`/`$id` (the
 * record timestamp as Int µs).
 */

import { notFound, unprocessable } from "../errors";
import { lookupLabel, type Node } from "../nodes";
import {
  boolValue,
  durationValue,
  FALSE,
  floatValue,
  intValue,
  isTruthy,
  parseDurationLiteral,
  parseLabelValue,
  stringify,
  stringValue,
  TRUE,
  toFloat,
  toInt,
  truncateToI64,
  type Value,
} from "../values";
import { type OperatorBuilder, requireAtLeast, requireExactly } from "./operator";

export const CAST_TYPES = ["bool", "int", "float", "string", "duration"] as const;
export type CastType = (typeof CAST_TYPES)[number];

function asCastType(name: string): CastType {
  const found = CAST_TYPES.find((type) => type === name);
  if (found === undefined) throw unprocessable(`Unknown type '${name}'`);
  return found;
}

function toDuration(value: Value): bigint {
  switch (value.type) {
    case "duration":
      return value.value;
    case "float":
      return truncateToI64(value.value);
    case "string": {
      const literal = parseDurationLiteral(value.value);
      return literal ?? truncateToI64(toFloat(value));
    }
    default:
      return toInt(value);
  }
}

/** Converts a value to the named type (`$cast`). */
export function castValue(value: Value, type: CastType): Value {
  switch (type) {
    case "bool":
      return boolValue(isTruthy(value));
    case "int":
      return intValue(toInt(value));
    case "float":
      return floatValue(toFloat(value));
    case "string":
      return stringValue(stringify(value));
    case "duration":
      return durationValue(toDuration(value));
  }
}

const exists: OperatorBuilder = (name, operands) => {
  requireAtLeast(name, operands, 1);
  return {
    name,
    evaluate(context) {
      for (const operand of operands) {
        if (lookupLabel(context.labels, stringify(operand.evaluate(context))) === undefined) return FALSE;
      }
      return TRUE;
    },
  };
};

const cast: OperatorBuilder = (name, operands) => {
  requireExactly(name, operands, 2);
  const [value, typeOperand] = operands as [Node, Node];
  const constantType = typeOperand.constant === undefined ? undefined : asCastType(stringify(typeOperand.constant));
  return {
    name,
    evaluate(context) {
      const input = value.evaluate(context);
      return castValue(input, constantType ?? asCastType(stringify(typeOperand.evaluate(context))));
    },
  };
};

const ref: OperatorBuilder = (name, operands) => {
  requireExactly(name, operands, 1);
  const [labelName] = operands as [Node];
  return {
    name,
    evaluate(context) {
      const label = stringify(labelName.evaluate(context));
      const raw = lookupLabel(context.labels, label);
      if (raw === undefined) throw notFound(`Reference '${label}' not found`);
      return parseLabelValue(raw);
    },
  };
};

const timestamp: OperatorBuilder = (name, operands) => {
  requireExactly(name, operands, 0);
  return { name, evaluate: (context) => intValue(BigInt(context.timestamp)) };
};

export const MISC_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $exists: exists,
  $has: exists,
  $cast: cast,
  $ref: ref,
  $timestamp: timestamp,
  $id: timestamp,
};
