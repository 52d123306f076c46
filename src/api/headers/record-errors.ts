/**
 * Per-record failures of batch operations are not HTTP errors: the request answers 200 and lists
 * them as `x-reduct-error-<ts>` (v1) or `x-reduct-error-<idx>-<delta>` (v2) headers whose value is
 * `<status>,<message>`; messages are made legal header text by `headerSafeMessage`.
 */
import { type ErrorInfo, headerSafeMessage } from "../../errors";

export const RECORD_ERROR_HEADER_PREFIX = "x-reduct-error-";

const errorValue = (error: ErrorInfo): string => `${error.status},${headerSafeMessage(error.message)}`;

/** `x-reduct-error-<ts>: <status>,<message>` for a v1 batch. */
export function renderRecordErrorV1(ts: number, error: ErrorInfo): [string, string] {
  return [`${RECORD_ERROR_HEADER_PREFIX}${ts}`, errorValue(error)];
}

/** `x-reduct-error-<entryIndex>-<delta>: <status>,<message>` for a v2 batch (delta, not ts). */
export function renderRecordErrorV2(entryIndex: number, delta: number, error: ErrorInfo): [string, string] {
  return [`${RECORD_ERROR_HEADER_PREFIX}${entryIndex}-${delta}`, errorValue(error)];
}
