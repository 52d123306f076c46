// What a caught value says: catch clauses see `unknown`, and the harness reads `message`, `code`,
// `status` (reduct-js' APIError) or `stack` of whatever was thrown, as `error?.field` did.

/** Property `name` of a caught value, or undefined when it is not an object that has it. */
export function fieldOf(error: unknown, name: string): unknown {
  return typeof error === "object" && error !== null && name in error ? Reflect.get(error, name) : undefined;
}

/** `error?.message ?? error`, as text. */
export function messageOf(error: unknown): string {
  return String(fieldOf(error, "message") ?? error);
}

/** The `code` of a caught Node error (ENOENT, ECONNREFUSED …), if it has one. */
export function codeOf(error: unknown): unknown {
  return fieldOf(error, "code");
}

/** The `stack` of a caught error, if it has one. */
export function stackOf(error: unknown): unknown {
  return fieldOf(error, "stack");
}

/** The `status` of a reduct-js APIError (or anything else with a status). */
export function statusOf(error: unknown): unknown {
  return fieldOf(error, "status");
}
