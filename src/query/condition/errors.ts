/**
 * The only error type the condition module throws. It is deliberately independent of the app's
 * `HttpError` so the module stays pure and portable; the query layer maps `{status, message}` onto
 * the HTTP error in one place. `LimitReached` is an internal control-flow signal, never exported
 * from the public index: `$limit` uses it to stop a query, like the reference's `Interrupt` code.
 */

export type ConditionErrorStatus = 400 | 404 | 422;

export class ConditionError extends Error {
  constructor(
    readonly status: ConditionErrorStatus,
    message: string,
  ) {
    super(message);
    this.name = "ConditionError";
  }
}

/** 422: a malformed condition, or an evaluation error such as a type mismatch. */
export const unprocessable = (message: string): ConditionError => new ConditionError(422, message);

/** 404: a referenced label does not exist on the current record. */
export const notFound = (message: string): ConditionError => new ConditionError(404, message);

/** 400: the caller handed the evaluator something invalid (bad record or state snapshot). */
export const badInput = (message: string): ConditionError => new ConditionError(400, message);

/** Thrown by `$limit` once its count is exceeded; the evaluator turns it into `done = true`. */
export class LimitReached {
  readonly reason = "limit";
}

/** Prefix of the message used when an unexpected JS exception is converted (a bug if ever seen). */
export const INTERNAL_FAILURE_PREFIX = "Condition failed unexpectedly: ";

/** Converts anything thrown by a bug into a ConditionError so callers see one error type only. */
export function asConditionError(error: unknown): ConditionError {
  if (error instanceof ConditionError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return unprocessable(`${INTERNAL_FAILURE_PREFIX}${detail}`);
}
