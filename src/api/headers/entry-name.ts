/**
 * Entry name rules for writes, creates and rename targets. Reads never validate names
 * (an invalid name simply is not found), so this is called only where the reference calls it.
 */
import { unprocessable } from "../../errors";

/** ReductStore has no limit; ours keeps names usable in object keys, paths and headers. */
export const MAX_ENTRY_NAME_LENGTH = 512;
export const META_ENTRY_NAME = "$meta";

const META_SUFFIX = `/${META_ENTRY_NAME}`;
const ENTRY_NAME_CHARS = /^[A-Za-z0-9_/-]+$/;

export const EMPTY_SEGMENT_MESSAGE = "Entry name must be non-empty and must not contain empty path segments";
export const ENTRY_CHARS_MESSAGE = "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'";

function checkPlainName(name: string): void {
  if (name === "" || name.startsWith("/") || name.endsWith("/") || name.includes("//")) {
    throw unprocessable(EMPTY_SEGMENT_MESSAGE);
  }
  if (!ENTRY_NAME_CHARS.test(name)) throw unprocessable(ENTRY_CHARS_MESSAGE);
}

/**
 * Throws 422 unless `name` is a valid entry name: segments of `[A-Za-z0-9_-]` joined by `/`
 * (no empty segment), or `$meta`, or a valid name followed by `/$meta`; at most
 * `MAX_ENTRY_NAME_LENGTH` characters.
 */
export function validateEntryName(name: string): void {
  if (name !== META_ENTRY_NAME) {
    checkPlainName(name.endsWith(META_SUFFIX) ? name.slice(0, -META_SUFFIX.length) : name);
  }
  if (name.length > MAX_ENTRY_NAME_LENGTH) {
    throw unprocessable(`Entry name must be at most ${MAX_ENTRY_NAME_LENGTH} characters`);
  }
}
