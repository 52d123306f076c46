// The one HTTP client of the harness (smoke checks, crash loop, soak, export, bench): node:http with
// a bounded keep-alive pool to 127.0.0.1 only, a time limit on every request, and bodies that are a
// Buffer, a string or streamed from a repeated chunk (a large record never sits in memory whole).
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";

export const LOOPBACK = "127.0.0.1";

/** `size` bytes made of repeats of `chunk`, streamed. */
export interface RepeatedBody {
  size: number;
  chunk: Buffer;
}

export type RequestBody = Buffer | string | RepeatedBody;

export interface RequestSpec {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: RequestBody;
  timeoutMs?: number;
  /** What the request carries, for load statistics (bench). */
  records?: number;
  bytes?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-cased names. */
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A socket error, a cut-short answer or a timeout; `code` is the socket's code or ECUT/EABORTED/ETIMEOUT. */
export class RequestError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

export interface ClientOptions {
  /** Sent as `Authorization: Bearer …` unless a request sets its own. */
  token?: string;
  connections?: number;
  timeoutMs?: number;
  keepAlive?: boolean;
  /**
   * "fifo" with a 4 s idle close (the default): workerd closes a keep-alive connection after 5 s
   * idle, and a request sent on it just then dies with ECONNRESET before the server read it; using
   * the sockets round-robin and closing idle ones first avoids that. The bench keeps node's default
   * pool ("lifo", no idle close) so that its figures stay comparable with earlier runs.
   */
  pool?: "fifo" | "lifo";
}

export interface HttpClient {
  readonly baseUrl: string;
  readonly port: number;
  readonly connections: number;
  readonly agent: http.Agent;
  send(spec: RequestSpec): Promise<HttpResponse>;
  request(method: string, path: string, options?: Omit<RequestSpec, "method" | "path">): Promise<HttpResponse>;
  close(): void;
}

function bodyLength(body: RequestBody): number {
  return Buffer.isBuffer(body) || typeof body === "string" ? Buffer.byteLength(body) : body.size;
}

function streamBody(req: http.ClientRequest, { size, chunk }: RepeatedBody): void {
  let left = size;
  const pump = () => {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!req.write(piece)) {
        req.once("drain", pump);
        return;
      }
    }
    req.end();
  };
  pump();
}

/** A client for `baseUrl` (http://127.0.0.1:<port>; anything else is refused). */
export function createHttpClient(baseUrl: string, options: ClientOptions = {}): HttpClient {
  const { token, connections = 16, timeoutMs = 60_000, keepAlive = true, pool = "fifo" } = options;
  const url = new URL(baseUrl);
  if (url.hostname !== LOOPBACK) throw new Error(`refusing to talk to ${url.hostname}: ${LOOPBACK} only`);
  const port = Number(url.port);
  const agent = new http.Agent({
    keepAlive,
    maxSockets: connections,
    maxFreeSockets: connections,
    ...(pool === "fifo" ? { scheduling: "fifo" as const, timeout: 4_000 } : {}),
  });
  const auth: OutgoingHttpHeaders = token ? { authorization: `Bearer ${token}` } : {};

  function send({ method = "GET", path, headers = {}, body, timeoutMs: limit = timeoutMs }: RequestSpec): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const allHeaders: OutgoingHttpHeaders = { ...auth, ...headers };
      if (body !== undefined && allHeaders["content-length"] === undefined) allHeaders["content-length"] = bodyLength(body);
      let settled = false;
      const finish = (error: RequestError | undefined, response?: HttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(response as HttpResponse);
      };
      const failure = (error: NodeJS.ErrnoException) =>
        error instanceof RequestError ? error : new RequestError(`${method} ${path}: ${error.message}`, error.code);
      const req = http.request({ host: LOOPBACK, port, method, path, headers: allHeaders, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          if (!res.complete) finish(new RequestError(`${method} ${path}: response cut short`, "ECUT"));
          else finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on("error", (error) => finish(failure(error)));
        res.on("aborted", () => finish(new RequestError(`${method} ${path}: response aborted`, "EABORTED")));
      });
      const timer = setTimeout(() => {
        req.destroy(new RequestError(`${method} ${path}: timed out after ${limit} ms`, "ETIMEOUT"));
      }, limit);
      req.on("error", (error) => finish(failure(error)));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body) || typeof body === "string") req.end(body);
      else streamBody(req, body);
    });
  }

  return {
    baseUrl,
    port,
    connections,
    agent,
    send,
    request: (method, path, rest = {}) => send({ ...rest, method, path }),
    close: () => agent.destroy(),
  };
}

/** The `x-reduct-error` of a response, or "". */
export const errorOf = (response: HttpResponse): string => String(response.headers["x-reduct-error"] ?? "");
