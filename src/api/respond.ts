/**
 * How responses leave the edge: the one place errors are rendered (`{"detail": …}` +
 * `x-reduct-error`), and the headers every response carries.
 */
import { HTTPException } from "hono/http-exception";
import { HttpError, headerSafeMessage } from "../errors";
import { API_VERSION, SERVER_HEADER } from "../version";

export function errorResponse(error: HttpError, method = "GET"): Response {
  const message = error.message;
  const headers = new Headers({
    ...error.headers,
    "content-type": "application/json",
    "x-reduct-error": headerSafeMessage(message),
  });
  const body = method === "HEAD" ? null : JSON.stringify({ detail: message });
  return new Response(body, { status: error.status, headers });
}

/** Turns anything thrown into our error type; unexpected faults become a logged 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof HTTPException) {
    return new HttpError(error.status === 413 ? 413 : 400, error.message || "Bad request");
  }
  console.error("unhandled error:", error);
  const detail = error instanceof Error ? error.message : String(error);
  return new HttpError(500, `Internal server error: ${detail}`);
}

/**
 * Applies `edit` to the response's headers in place, or to a copy when they are immutable
 * (responses from fetch() or R2). In place matters: a batched read carries ~90 headers, and
 * copying the response per middleware (Hono's `c.header` after `next()` does) cost ~15 % of a read.
 */
export function withHeaders(response: Response, edit: (headers: Headers) => void): Response {
  try {
    edit(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    edit(copy.headers);
    return copy;
  }
}

/** Adds the headers reduct-js requires on every response, errors and 404s included. */
export function withDefaultHeaders(response: Response): Response {
  return withHeaders(response, (headers) => {
    headers.set("x-reduct-api", API_VERSION);
    headers.set("server", SERVER_HEADER);
  });
}
