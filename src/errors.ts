/**
 * The one error type of the HTTP edge. Every expected failure is an `HttpError` with the exact
 * status and message of the ReductStore contract; `app.onError` renders it in exactly one place
 * as `{"detail": …}` plus the `x-reduct-error` header. Constructors are named after the status.
 */

import type { ErrorInfo, ErrorStatus } from "./model/records";

export type { ErrorInfo, ErrorStatus };

export class HttpError extends Error {
  /** `headers`: what the answer needs besides the error (e.g. `Accept-Encoding` on a 415). */
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const unauthorized = (message: string) => new HttpError(401, message);
export const forbidden = (message: string) => new HttpError(403, message);
export const notFound = (message: string) => new HttpError(404, message);
export const conflict = (message: string) => new HttpError(409, message);
export const payloadTooLarge = (message: string) => new HttpError(413, message);
export const unsupportedMediaType = (message: string, headers: Record<string, string> = {}) =>
  new HttpError(415, message, headers);
export const rangeNotSatisfiable = (message: string) => new HttpError(416, message);
export const unprocessable = (message: string) => new HttpError(422, message);
export const tooEarly = (message: string) => new HttpError(425, message);
export const headersTooLarge = (message: string) => new HttpError(431, message);
export const internal = (message: string) => new HttpError(500, message);
export const unavailable = (message: string) => new HttpError(503, message);

export type Result<T> = ({ ok: true } & T) | { ok: false; error: ErrorInfo };

export const fail = (status: ErrorStatus, message: string): { ok: false; error: ErrorInfo } => ({
  ok: false,
  error: { status, message },
});

/** Unwraps an RPC result at the edge, turning an expected failure into our error type. */
export function unwrap<R extends { ok: true } | { ok: false; error: ErrorInfo }>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) {
    const { error } = result as { ok: false; error: ErrorInfo };
    throw new HttpError(error.status, error.message);
  }
  return result as Extract<R, { ok: true }>;
}

const utf8 = new TextEncoder();

/**
 * `x-reduct-error` must be a legal header value, and clients read the message only from it. Every
 * char outside visible ASCII (controls, DEL, non-ASCII) becomes the percent-escaped bytes of its
 * UTF-8 form, so `±` reads `%C2%B1`; visible ASCII, `%` included, stays as it is, so every message
 * the reference renders verbatim is unchanged. The JSON `detail` keeps the exact text.
 */
export function headerSafeMessage(message: string): string {
  if (/^[\x20-\x7e]*$/.test(message)) return message;
  let safe = "";
  for (const char of message) {
    const code = char.codePointAt(0) ?? 0;
    if (code >= 0x20 && code <= 0x7e) safe += char;
    else for (const byte of utf8.encode(char)) safe += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return safe;
}
