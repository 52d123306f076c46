/**
 * Duration literals of lifecycle settings, read exactly as ReductStore reads them, so a policy
 * either server accepts means the same span on both: whitespace-separated parts, each a signed
 * whole number and a unit (us, ms, s, m, h, d), summed (`"2h -30m"` is 90 minutes). A part is split
 * into its digits, '.' and '-' (the value) and everything else (the unit), wherever they stand.
 * Values are exact integers of µs; the settings bound them so that every later sum stays exact.
 */

const UNIT_US: Readonly<Record<string, bigint>> = {
  us: 1n,
  ms: 1_000n,
  s: 1_000_000n,
  m: 60_000_000n,
  h: 3_600_000_000n,
  d: 86_400_000_000n,
};

/** Rust's `char::is_whitespace` (Unicode White_Space), which `split_whitespace` and `trim` use. */
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;
const VALUE_CHAR = /^[0-9.-]$/;
const I64_VALUE = /^-?[0-9]+$/;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

export type DurationParse = { ok: true; us: bigint } | { ok: false; error: string };

function parsePart(part: string): DurationParse {
  let value = "";
  let unit = "";
  for (const char of part) {
    if (VALUE_CHAR.test(char)) value += char;
    else unit += char;
  }
  const amount = I64_VALUE.test(value) ? BigInt(value) : null;
  if (amount === null || amount < I64_MIN || amount > I64_MAX) return { ok: false, error: `Invalid duration value: ${part}` };
  const size = Object.hasOwn(UNIT_US, unit) ? UNIT_US[unit] : undefined;
  if (size === undefined) return { ok: false, error: `Invalid duration unit: ${unit}` };
  return { ok: true, us: amount * size };
}

/** The literal's total in µs, exact (a bigint, so no total is rounded before the caller's bounds). */
export function parseDuration(text: string): DurationParse {
  const parts = text.split(WHITESPACE).filter((part) => part !== "");
  if (parts.length === 0) return { ok: false, error: "Duration literal cannot be empty" };
  let total = 0n;
  for (const part of parts) {
    const parsed = parsePart(part);
    if (!parsed.ok) return parsed;
    total += parsed.us;
  }
  return { ok: true, us: total };
}

/**
 * A literal of exactly `us` that every reader of the grammar above takes back unchanged: whole
 * seconds as `<n>s` (the familiar `86400s`), anything else as `<n>us`, never a fraction.
 */
export function formatDuration(us: number): string {
  if (!Number.isSafeInteger(us)) throw new RangeError(`duration ${us} µs is not a whole number of µs`);
  return us % 1_000_000 === 0 ? `${us / 1_000_000}s` : `${us}us`;
}
