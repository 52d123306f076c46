// Entry name rules: exact messages, table-driven.
import { describe, expect, it } from "vitest";
import { MAX_ENTRY_NAME_LENGTH, validateEntryName } from "../../src/api/headers";
import { HttpError } from "../../src/errors";

function thrown(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("expected an HttpError, nothing was thrown");
}

const SEGMENTS = "Entry name must be non-empty and must not contain empty path segments";
const CHARS = "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'";

describe("validateEntryName", () => {
  it.each([
    "entry-1",
    "a",
    "A_b-9",
    "a/b/c",
    "mqtt/topic/1",
    "$meta",
    "a/$meta",
    "a/b/$meta",
    "-/_",
    "x".repeat(MAX_ENTRY_NAME_LENGTH),
    `${"x".repeat(MAX_ENTRY_NAME_LENGTH - 6)}/$meta`,
  ])("accepts %j", (name) => {
    expect(() => validateEntryName(name)).not.toThrow();
  });

  it.each([
    ["", SEGMENTS],
    ["/", SEGMENTS],
    ["/a", SEGMENTS],
    ["a/", SEGMENTS],
    ["a//b", SEGMENTS],
    ["/$meta", SEGMENTS],
    ["a//$meta", SEGMENTS],
    ["//$meta", SEGMENTS],
    ["e.1", CHARS],
    ["a b", CHARS],
    ["bü", CHARS],
    ["a$meta", CHARS],
    ["a/$meta/b", CHARS],
    ["$meta/$meta", CHARS],
    ["a/$META", CHARS],
    ["$", CHARS],
    ["a%2Fb", CHARS],
    ["a\\b", CHARS],
    ["x".repeat(MAX_ENTRY_NAME_LENGTH + 1), `Entry name must be at most ${MAX_ENTRY_NAME_LENGTH} characters`],
    [`${"x".repeat(MAX_ENTRY_NAME_LENGTH)}/$meta`, `Entry name must be at most ${MAX_ENTRY_NAME_LENGTH} characters`],
  ])("rejects %j → 422 %s", (name, message) => {
    expect(thrown(() => validateEntryName(name))).toMatchObject({ status: 422, message });
  });
});
