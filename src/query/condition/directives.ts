/**
 * Directives: top-level `#…` keys of `when` that tune the query instead of filtering
 * records. They are validated here, at parse time, into typed values (µs for durations, bytes for
 * sizes) so the query layer never sees raw JSON. `#ext` is rejected: no extensions exist here.
 */

import { unprocessable } from "./errors";
import { parseDurationLiteral } from "./values";

/** `#ctx_before`/`#ctx_after`: a number of records or a time span. */
export type ContextSpan =
  | { readonly kind: "records"; readonly count: number }
  | { readonly kind: "duration"; readonly us: number };

export interface Directives {
  ctxBefore?: ContextSpan;
  ctxAfter?: ContextSpan;
  /** Returned records keep only these labels. */
  selectLabels?: string[];
  batchSizeBytes?: number;
  batchRecords?: number;
  batchMetadataSizeBytes?: number;
  batchTimeoutUs?: number;
  recordTimeoutUs?: number;
  ioTimeoutUs?: number;
}

export const DIRECTIVE_NAMES = [
  "#ctx_before",
  "#ctx_after",
  "#select_labels",
  "#ext",
  "#batch_size",
  "#batch_records",
  "#batch_metadata_size",
  "#batch_timeout",
  "#record_timeout",
  "#io_timeout",
] as const;

type DirectiveName = (typeof DIRECTIVE_NAMES)[number];

export const MAX_SELECTED_LABELS = 1_000;

const MAX_SAFE_US = BigInt(Number.MAX_SAFE_INTEGER);

/** Decimal and binary size units as accepted by the reference (`bytesize`), case-insensitive. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  p: 1e15,
  pb: 1e15,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
  pi: 1024 ** 5,
  pib: 1024 ** 5,
};
const SIZE_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

const isNonNegativeSafeInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/** Arrays are allowed (as in the reference) but these directives take exactly one value. */
function single(name: DirectiveName, value: unknown, message: string): unknown {
  if (!Array.isArray(value)) return value;
  if (value.length !== 1) throw unprocessable(`${name} must be ${message}`);
  return value[0];
}

function durationMicros(name: DirectiveName, text: string): number | undefined {
  const us = parseDurationLiteral(text);
  if (us === undefined) return undefined;
  if (us < 0n) throw unprocessable(`${name} must be non-negative`);
  if (us > MAX_SAFE_US) throw unprocessable(`${name} is too large`);
  return Number(us);
}

function parseContextSpan(name: DirectiveName, raw: unknown): ContextSpan {
  const value = single(name, raw, "a single value");
  if (typeof value === "number" && Number.isSafeInteger(value)) {
    if (value < 0) throw unprocessable(`${name} must be non-negative`);
    return { kind: "records", count: value };
  }
  if (typeof value === "string") {
    const us = durationMicros(name, value);
    if (us !== undefined) return { kind: "duration", us };
  }
  throw unprocessable(`${name} must be an integer or duration`);
}

function parseSelectLabels(raw: unknown): string[] {
  const labels = Array.isArray(raw) ? raw : [raw];
  if (labels.length === 0) throw unprocessable("#select_labels must contain at least one label");
  if (labels.length > MAX_SELECTED_LABELS) {
    throw unprocessable(`#select_labels must contain at most ${MAX_SELECTED_LABELS} labels`);
  }
  const names: string[] = [];
  for (const label of labels) {
    if (typeof label !== "string") throw unprocessable("#select_labels must contain only string values");
    names.push(label);
  }
  return names;
}

function parseSize(name: DirectiveName, raw: unknown): number {
  const value = single(name, raw, "a single integer or string value");
  if (isNonNegativeSafeInteger(value)) return value;
  if (typeof value === "string") {
    const match = SIZE_PATTERN.exec(value);
    const unitName = (match?.[2] ?? "").toLowerCase();
    // Own keys only: `1constructor` must not find Object.prototype.constructor.
    const unit = match === null || !Object.hasOwn(SIZE_UNITS, unitName) ? undefined : SIZE_UNITS[unitName];
    if (match === null || unit === undefined) {
      throw unprocessable(`${name} must be a positive integer or string: invalid size '${value}'`);
    }
    const bytes = Math.floor(Number(match[1]) * unit);
    if (!Number.isSafeInteger(bytes)) throw unprocessable(`${name} is too large`);
    return bytes;
  }
  throw unprocessable(`${name} must be a positive integer or string representing a positive integer`);
}

function parseCount(name: DirectiveName, raw: unknown): number {
  const value = single(name, raw, "a single integer value");
  if (isNonNegativeSafeInteger(value)) return value;
  throw unprocessable(`${name} must be a positive integer`);
}

function parseTimeout(name: DirectiveName, raw: unknown): number {
  const value = single(name, raw, "a single integer or duration value");
  if (isNonNegativeSafeInteger(value)) {
    const us = value * 1_000_000;
    if (!Number.isSafeInteger(us)) throw unprocessable(`${name} is too large`);
    return us;
  }
  if (typeof value === "string") {
    const us = durationMicros(name, value);
    if (us !== undefined) return us;
  }
  throw unprocessable(`${name} must be a positive integer or duration`);
}

function isDirectiveName(name: string): name is DirectiveName {
  return (DIRECTIVE_NAMES as readonly string[]).includes(name);
}

/** Validates one top-level `#…` key and stores its typed value in `directives`. */
export function parseDirective(name: string, value: unknown, directives: Directives): void {
  if (!isDirectiveName(name)) throw unprocessable(`Directive '${name}' is not supported`);
  if (value === null) throw unprocessable(`Directive '${name}' cannot be null`);
  switch (name) {
    case "#ctx_before":
      directives.ctxBefore = parseContextSpan(name, value);
      return;
    case "#ctx_after":
      directives.ctxAfter = parseContextSpan(name, value);
      return;
    case "#select_labels":
      directives.selectLabels = parseSelectLabels(value);
      return;
    case "#ext":
      throw unprocessable("Directive '#ext' is not supported: no extensions are installed");
    case "#batch_size":
      directives.batchSizeBytes = parseSize(name, value);
      return;
    case "#batch_metadata_size":
      directives.batchMetadataSizeBytes = parseSize(name, value);
      return;
    case "#batch_records":
      directives.batchRecords = parseCount(name, value);
      return;
    case "#batch_timeout":
      directives.batchTimeoutUs = parseTimeout(name, value);
      return;
    case "#record_timeout":
      directives.recordTimeoutUs = parseTimeout(name, value);
      return;
    case "#io_timeout":
      directives.ioTimeoutUs = parseTimeout(name, value);
      return;
  }
}
