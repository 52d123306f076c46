/**
 * String operators: `$contains $starts_with $ends_with`, two operands, both stringified
 * first (so numbers and durations can be matched by their text).
 */

import type { Node } from "../nodes";
import { boolValue, stringify } from "../values";
import { type OperatorBuilder, requireExactly } from "./operator";

function stringTest(test: (text: string, part: string) => boolean): OperatorBuilder {
  return (name, operands) => {
    requireExactly(name, operands, 2);
    const [text, part] = operands as [Node, Node];
    return {
      name,
      evaluate(context) {
        const haystack = stringify(text.evaluate(context));
        return boolValue(test(haystack, stringify(part.evaluate(context))));
      },
    };
  };
}

export const STRING_OPERATORS: Readonly<Record<string, OperatorBuilder>> = {
  $contains: stringTest((text, part) => text.includes(part)),
  $starts_with: stringTest((text, part) => text.startsWith(part)),
  $ends_with: stringTest((text, part) => text.endsWith(part)),
};
