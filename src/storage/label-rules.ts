/**
 * What a record's labels may be. Every read path must be able to return a stored record: single
 * reads carry each label as an `x-reduct-label-<name>` header, batch reads as `name=value` items of
 * one header line, and the official clients parse those back. So a label set is refused (422) at
 * write, and after a label update, unless every label survives all of them unchanged:
 *
 * - names are HTTP header tokens (no spaces, `,`, `=`, `"`, `/`, non-ASCII), and no two names of a
 *   record differ only by case (header names are case-insensitive, so a single read could not tell
 *   them apart);
 * - `__proto__` is refused: reduct-js collects labels into a plain object and drops it silently;
 * - values are visible ASCII without surrounding spaces (header values are trimmed), do not start
 *   with `"` and do not hold both `,` and `"`: a value with a comma is sent quoted, and a quoted value
 *   ends at the next `"` (the batch grammar has no escape);
 * - the size caps below keep one record's headers far below what the runtime can send.
 *
 * Pure: the edge turns a violation into `HttpError` 422, the bucket object into a per-record failure.
 */

/** Caps on one record's labels; ReductStore has none, we keep records storable and renderable. */
export const MAX_LABEL_NAME_BYTES = 256;
export const MAX_LABEL_VALUE_BYTES = 4 * 1024;
export const MAX_LABELS_PER_RECORD = 128;
/**
 * Cap on a record's labels as the largest read form sends them: a single read's
 * `x-reduct-label-<name>: <value>\r\n` lines (`LABEL_HEADER_OVERHEAD_BYTES` per label), with `%`
 * in a name counted as the `%25` batch v2 sends. Under Node's default 16 KiB response-header limit
 * (reduct-js) this leaves 4 KiB for the other headers of a response (time, type, length, entry…).
 */
export const MAX_LABEL_TOTAL_BYTES = 12 * 1024;
/** `x-reduct-label-` + `: ` + CRLF. */
export const LABEL_HEADER_OVERHEAD_BYTES = 19;
/**
 * Caps on the ops of one label update. Generous: an update may remove every label and add a full
 * new set; the merged result is what the per-record caps above check.
 */
export const MAX_LABEL_OPS_PER_UPDATE = 4 * MAX_LABELS_PER_RECORD;
export const MAX_LABEL_OPS_TOTAL_BYTES = 64 * 1024;

export const EMPTY_LABEL_NAME = "Label names must not be empty";

const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VISIBLE_ASCII = /^[\x20-\x7e]*$/;
/** Names a JavaScript client cannot keep as an own property of a plain object. */
const UNREPRESENTABLE_NAMES = new Set(["__proto__"]);

const encoder = new TextEncoder();
const utf8Length = (text: string): number => encoder.encode(text).length;

/** Header bytes one label takes in the largest read form (see `MAX_LABEL_TOTAL_BYTES`). */
function renderedLabelBytes(name: string, nameBytes: number, valueBytes: number): number {
  const escapedPercents = name.split("%").length - 1;
  return nameBytes + 2 * escapedPercents + valueBytes + LABEL_HEADER_OVERHEAD_BYTES;
}

/** True when `name` can be part of an `x-reduct-label-<name>` header name. */
export const isHeaderToken = (name: string): boolean => HEADER_TOKEN.test(name);

/** Why one label name cannot be stored, or null. */
function nameViolation(name: string): string | null {
  if (!isHeaderToken(name)) {
    return `Label name '${name}' is invalid: label names may contain only letters, digits and !#$%&'*+-.^_\`|~`;
  }
  if (UNREPRESENTABLE_NAMES.has(name)) return `Label name '${name}' is reserved`;
  return null;
}

/** Why one label value cannot be stored, or null. */
function valueViolation(name: string, value: string): string | null {
  if (!VISIBLE_ASCII.test(value) || value.trim() !== value) {
    return `Label value of '${name}' must be visible ASCII without leading or trailing spaces`;
  }
  if (value.startsWith('"') || (value.includes(",") && value.includes('"'))) {
    return `Label value of '${name}' must not start with '"' or contain both ',' and '"'`;
  }
  return null;
}

/**
 * Why a label set cannot be stored, or null. `kind: "update"` reads the pairs as label ops of an
 * update (an empty value removes the label) and checks only what the request itself gets wrong:
 * empty or oversized names and values, and the op caps. Whether a record can hold the labels is
 * decided on the merged result, so a batched update reports it per record like every other label
 * rule, and a label stored before these rules can still be removed.
 */
export function labelViolation(labels: Iterable<readonly [string, string]>, kind: "labels" | "update" = "labels"): string | null {
  let count = 0;
  let total = 0;
  const byFoldedName = new Map<string, string>();
  for (const [name, value] of labels) {
    const nameBytes = utf8Length(name);
    const valueBytes = utf8Length(value);
    if (nameBytes === 0) return EMPTY_LABEL_NAME;
    if (nameBytes > MAX_LABEL_NAME_BYTES) return `Label names must be at most ${MAX_LABEL_NAME_BYTES} bytes`;
    if (valueBytes > MAX_LABEL_VALUE_BYTES) return `Label value of '${name}' must be at most ${MAX_LABEL_VALUE_BYTES} bytes`;
    count++;
    total += renderedLabelBytes(name, nameBytes, valueBytes);
    if (kind === "update") continue;
    const problem = nameViolation(name) ?? valueViolation(name, value);
    if (problem !== null) return problem;
    const folded = name.toLowerCase();
    const other = byFoldedName.get(folded);
    if (other !== undefined && other !== name) return `Label names '${other}' and '${name}' differ only by case`;
    byFoldedName.set(folded, name);
  }
  if (kind === "update") {
    if (count > MAX_LABEL_OPS_PER_UPDATE) return `A label update can have at most ${MAX_LABEL_OPS_PER_UPDATE} labels`;
    if (total > MAX_LABEL_OPS_TOTAL_BYTES) {
      return `Labels of a label update must be at most ${MAX_LABEL_OPS_TOTAL_BYTES} bytes in total`;
    }
    return null;
  }
  if (count > MAX_LABELS_PER_RECORD) return `A record can have at most ${MAX_LABELS_PER_RECORD} labels`;
  if (total > MAX_LABEL_TOTAL_BYTES) {
    return `Labels of a record must be at most ${MAX_LABEL_TOTAL_BYTES} bytes in total as response headers (names, values and ${LABEL_HEADER_OVERHEAD_BYTES} bytes per label)`;
  }
  return null;
}

/**
 * Applies label ops (empty value = remove) to a record's labels. A Map throughout: names such as
 * `constructor` or `__proto__` are data, never object keys with special meaning.
 */
export function mergeLabels(
  labels: Readonly<Record<string, string>>,
  changes: Iterable<readonly [string, string]>,
): Map<string, string> {
  const merged = new Map(Object.entries(labels));
  for (const [name, value] of changes) {
    if (value === "") merged.delete(name);
    else merged.set(name, value);
  }
  return merged;
}
