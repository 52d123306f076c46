/**
 * Every operator by name (aliases included), so the parser has one lookup table and a
 * test can enumerate the whole language.
 */

import { AGGREGATION_OPERATORS } from "./aggregation";
import { ARITHMETIC_OPERATORS } from "./arithmetic";
import { COMPARISON_OPERATORS } from "./comparison";
import { DATE_OPERATORS } from "./date";
import { LOGICAL_OPERATORS } from "./logical";
import { MISC_OPERATORS } from "./misc";
import type { OperatorBuilder } from "./operator";
import { STRING_OPERATORS } from "./string";

const OPERATORS: ReadonlyMap<string, OperatorBuilder> = new Map(
  Object.entries({
    ...COMPARISON_OPERATORS,
    ...LOGICAL_OPERATORS,
    ...MISC_OPERATORS,
    ...ARITHMETIC_OPERATORS,
    ...STRING_OPERATORS,
    ...DATE_OPERATORS,
    ...AGGREGATION_OPERATORS,
  }),
);

export const OPERATOR_NAMES: readonly string[] = [...OPERATORS.keys()];

export function findOperator(name: string): OperatorBuilder | undefined {
  return OPERATORS.get(name);
}
