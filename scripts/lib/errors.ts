// What a caught value says: catch clauses see `unknown`.

/** The `message` of a caught error (anything with a message), else the value itself as text. */
export function messageOf(error: unknown): string {
  if (typeof error === "object" && error !== null && "message" in error && error.message != null) return String(error.message);
  return String(error);
}

/** The `code` of a caught Node error (ENOENT, ECONNREFUSED …), if it has one. */
export function codeOf(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}
