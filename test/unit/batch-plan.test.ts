import { describe, expect, it } from "vitest";
import { type BodyPart, planBody, RANGE_MERGE_GAP_BYTES, WHOLE_BLOCK_MAX_BYTES } from "../../src/storage/record-bodies";

const BIG = WHOLE_BLOCK_MAX_BYTES + 1;
const block = (key: string, offset: number, size: number, objectBytes: number | null = BIG): BodyPart => ({
  size,
  body: { kind: "r2", key, offset, whole: false, objectBytes },
});

describe("planBody", () => {
  it.each([
    [
      "adjacent records of a large block share one range",
      [block("b", 0, 10), block("b", 10, 10), block("b", 20, 5)],
      [["range", "b", 0, 25, 3]],
    ],
    [
      "a small gap is read through",
      [block("b", 0, 10), block("b", 10 + RANGE_MERGE_GAP_BYTES, 10)],
      [["range", "b", 0, 20 + RANGE_MERGE_GAP_BYTES, 2]],
    ],
    [
      "a large gap starts a new range",
      [block("b", 0, 10), block("b", 11 + RANGE_MERGE_GAP_BYTES, 10)],
      [
        ["range", "b", 0, 10, 1],
        ["range", "b", 11 + RANGE_MERGE_GAP_BYTES, 10, 1],
      ],
    ],
    [
      "another block starts a new range",
      [block("b", 0, 10), block("c", 10, 10)],
      [
        ["range", "b", 0, 10, 1],
        ["range", "c", 10, 10, 1],
      ],
    ],
    [
      "going backwards starts a new range",
      [block("b", 20, 10), block("b", 0, 10)],
      [
        ["range", "b", 20, 10, 1],
        ["range", "b", 0, 10, 1],
      ],
    ],
    ["unknown block size is treated as large", [block("b", 0, 10, null)], [["range", "b", 0, 10, 1]]],
    ["small blocks stay single (whole-block cache)", [block("b", 0, 10, 100), block("b", 10, 10, 100)], [["single"], ["single"]]],
  ] as const)("%s", (_name, parts, expected) => {
    const steps = planBody(parts as unknown as BodyPart[]).map((step) =>
      step.kind === "range" ? ["range", step.key, step.offset, step.length, step.parts.length] : ["single"],
    );
    expect(steps).toEqual(expected);
  });
});
