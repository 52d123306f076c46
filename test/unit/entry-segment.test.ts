/**
 * entrySegment maps instance, token and policy names to one entry-name segment: always valid,
 * bounded, fixed, and different for different names (two tokens never share an audit entry).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entrySegment, MAX_ENTRY_SEGMENT } from "../../src/system/events";

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const SEED = 0x5e9;

/** Reads an escaped (not cut-short) segment back: proves that one name has one form. */
function decode(segment: string): string {
  if (segment === "_") return "";
  const bytes: number[] = [];
  let out = "";
  const flush = () => {
    // WTF-8: lone surrogates are three-byte sequences too, so decode by hand.
    for (let i = 0; i < bytes.length; ) {
      const lead = bytes[i] ?? 0;
      const count = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
      let code = count === 1 ? lead : lead & (0xff >> (count + 1));
      for (let k = 1; k < count; k++) code = (code << 6) | ((bytes[i + k] ?? 0) & 0x3f);
      out += String.fromCodePoint(code);
      i += count;
    }
    bytes.length = 0;
  };
  for (let i = 0; i < segment.length; ) {
    if (segment[i] !== "_") {
      flush();
      out += segment[i];
      i += 1;
    } else if (segment[i + 1] === "_") {
      flush();
      out += "_";
      i += 2;
    } else {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) throw new Error(`not an escape at ${i}: ${segment}`);
      bytes.push(Number.parseInt(hex, 16));
      i += 3;
    }
  }
  flush();
  return out;
}

const names = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.stringMatching(/^[a-z._ -]{0,12}$/),
  fc.string({ unit: "binary", minLength: 60, maxLength: 256 }),
);

describe("entrySegment", () => {
  it.each([
    ["reduct-edge", "reduct-edge"],
    ["token-1", "token-1"],
    ["a.b", "a_2eb"],
    ["a_b", "a__b"],
    ["a_2e", "a__2e"],
    ["", "_"],
    ["_", "__"],
    ["ü", "_c3_bc"],
    ["a/b", "a_2fb"],
    ["😀", "_f0_9f_98_80"],
  ])("%j → %j", (name, segment) => {
    expect(entrySegment(name)).toBe(segment);
  });

  it("the names of the issue land in different entries", () => {
    expect(entrySegment("a.b")).not.toBe(entrySegment("a_b"));
  });

  it("is always a valid, bounded segment", () => {
    fc.assert(
      fc.property(names, (name) => {
        const segment = entrySegment(name);
        expect(segment).toMatch(SEGMENT);
        expect(segment.length).toBeLessThanOrEqual(MAX_ENTRY_SEGMENT);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("reads back to the name unless cut short, so different names never share a segment", () => {
    fc.assert(
      fc.property(names, (name) => {
        const segment = entrySegment(name);
        if (segment.includes("_h") && decodeOrNull(segment) === null) return;
        expect(decode(segment)).toBe(name);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("is injective on pairs, also for names cut short", () => {
    fc.assert(
      fc.property(names, names, (a, b) => {
        fc.pre(a !== b);
        expect(entrySegment(a)).not.toBe(entrySegment(b));
      }),
      { seed: SEED, numRuns: 2000 },
    );
    // Long names that share their whole kept beginning differ by their hash.
    const long = "x.".repeat(200);
    expect(entrySegment(`${long}a`)).not.toBe(entrySegment(`${long}b`));
    expect(entrySegment(`${long}a`)).toMatch(/_h[0-9a-f]{28}$/);
  });

  it("a cut-short form never equals an escaped one: an escaped form has no `_h` escape", () => {
    fc.assert(
      fc.property(names, (name) => {
        const segment = entrySegment(name);
        if (decodeOrNull(segment) !== null) expect(segment).not.toMatch(/(^|[^_])(__)*_h/);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

function decodeOrNull(segment: string): string | null {
  try {
    return decode(segment);
  } catch {
    return null;
  }
}
