/**
 * A small closed-loop load generator over node:http: a fixed number of keep-alive connections to
 * 127.0.0.1, each sending its next request when the previous answer is in. Every run is bounded by
 * a request count and a time limit. Bodies are Buffers or streamed from a repeated chunk (large
 * records never sit in this process's memory whole).
 */
import { performance } from "node:perf_hooks";
import { messageOf } from "../../scripts/lib/errors.ts";
import {
  createHttpClient,
  type HttpClient,
  type HttpResponse,
  LOOPBACK,
  type RequestSpec,
} from "../../scripts/lib/http-client.ts";
import { percentile } from "../../scripts/lib/stats.ts";

export { LOOPBACK };

/**
 * The shared client on node's default pool (see ClientOptions.pool). `keepAlive: false` opens a
 * new connection per request: workerd under Miniflare sometimes closes a kept-alive connection
 * after a large request body without saying so (seen with every server here, baselines included),
 * and the next request on it fails with ECONNRESET/EPIPE.
 */
export function createClient(port: number, connections: number, { keepAlive = true } = {}): HttpClient {
  return createHttpClient(`http://${LOOPBACK}:${port}`, { connections, keepAlive, pool: "lifo", timeoutMs: 30_000 });
}

/** One request of `spec` (see RequestSpec); resolves with status, headers and the whole body. */
export function send(client: HttpClient, spec: RequestSpec): Promise<HttpResponse> {
  return client.send(spec);
}

/**
 * Times requests and accounts what they carried. `check(response)` returns an error text or
 * undefined (default: anything but 200 is an error); `count(response)` may return the
 * `{ records, bytes }` a response carried when the request spec cannot know it in advance.
 */
/** How a load run judges an answer (an error text or undefined) and counts what it carried. */
export interface ResponseChecks {
  check?: (response: HttpResponse) => string | undefined;
  count?: (response: HttpResponse) => { records: number; bytes: number };
}

export interface LoadOptions extends ResponseChecks {
  client: HttpClient;
  total: number;
  maxSeconds: number;
  makeRequest: (index: number) => RequestSpec;
  onProgress?: (recorder: Recorder, elapsedS: number) => void;
  recorder?: Recorder;
}

/** What a Recorder made of its requests (Recorder.summary). */
export interface LoadSummary {
  requests: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  records: number;
  bytes: number;
  seconds: number;
  stoppedByTime: boolean;
  timeline: number[];
  latencyMs: { p50: number; p99: number; mean: number; max: number };
}

export class Recorder {
  started = performance.now();
  /** Records completed in each second since the start (for spotting slow-downs during a run). */
  timeline: number[] = [];
  latencies: number[] = [];
  attempted = 0;
  errors = 0;
  records = 0;
  bytes = 0;
  errorSamples: string[] = [];

  noteError(text: string): void {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(text);
  }

  async timed(client: HttpClient, spec: RequestSpec, { check, count }: ResponseChecks = {}): Promise<HttpResponse | undefined> {
    const t0 = performance.now();
    this.attempted++;
    try {
      const response = await send(client, spec);
      const elapsed = performance.now() - t0;
      const problem = check ? check(response) : response.status === 200 ? undefined : `HTTP ${response.status} ${response.body}`;
      if (problem) {
        this.noteError(problem);
        return undefined;
      }
      const carried = count ? count(response) : { records: spec.records ?? 1, bytes: spec.bytes ?? 0 };
      this.latencies.push(elapsed);
      const second = Math.floor((performance.now() - this.started) / 1000);
      for (let i = this.timeline.length; i <= second; i++) this.timeline.push(0);
      this.timeline[second] = (this.timeline[second] ?? 0) + carried.records;
      this.records += carried.records;
      this.bytes += carried.bytes;
      return response;
    } catch (error) {
      this.noteError(messageOf(error));
      return undefined;
    }
  }

  summary(seconds: number, stoppedByTime: boolean): LoadSummary {
    const sorted = Float64Array.from(this.latencies).sort();
    const ok = sorted.length;
    return {
      requests: this.attempted,
      ok,
      errors: this.errors,
      errorSamples: this.errorSamples,
      records: this.records,
      bytes: this.bytes,
      seconds,
      stoppedByTime,
      timeline: this.timeline,
      latencyMs: {
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        mean: ok > 0 ? sorted.reduce((a, b) => a + b, 0) / ok : Number.NaN,
        max: sorted[ok - 1] ?? Number.NaN,
      },
    };
  }
}

/**
 * Runs `sessions` concurrent lanes until each returns or `maxSeconds` pass. A lane gets its index,
 * `call(spec, options)` (a timed request, see Recorder), `timeLeft()` and `untimed(spec)` (a request
 * outside the latency statistics, e.g. creating a query); lanes must stop issuing requests once
 * `timeLeft()` is not positive. Calls `onProgress(recorder, elapsedS)` periodically. Pass a
 * `recorder` to accumulate several runs (its summary is then the caller's to make).
 */
export async function runSessions({
  client,
  sessions,
  maxSeconds,
  session,
  onProgress,
  progressMs = 2_000,
  recorder = new Recorder(),
}: {
  client: HttpClient;
  sessions: number;
  maxSeconds: number;
  session: (
    index: number,
    call: (spec: RequestSpec, options?: ResponseChecks) => Promise<HttpResponse | undefined>,
    timeLeft: () => number,
    untimed: (spec: RequestSpec) => Promise<HttpResponse>,
  ) => Promise<void>;
  onProgress?: (recorder: Recorder, elapsedS: number) => void;
  progressMs?: number;
  recorder?: Recorder;
}) {
  const started = performance.now();
  recorder.started = started;
  const deadline = started + maxSeconds * 1000;
  const timeLeft = () => deadline - performance.now();
  const call = (spec: RequestSpec, options?: ResponseChecks) => recorder.timed(client, spec, options);
  const untimed = (spec: RequestSpec) => send(client, spec);
  const progress = onProgress
    ? setInterval(() => onProgress(recorder, (performance.now() - started) / 1000), progressMs)
    : undefined;
  try {
    await Promise.all(Array.from({ length: sessions }, (_, index) => session(index, call, timeLeft, untimed)));
  } finally {
    if (progress) clearInterval(progress);
  }
  return recorder.summary((performance.now() - started) / 1000, timeLeft() <= 0);
}

/**
 * Closed loop: `total` requests from `makeRequest(i)` over `client.connections` lanes, each lane
 * sending its next request when the previous answer is in; stops early after `maxSeconds`.
 */
export function runLoad({ client, total, maxSeconds, makeRequest, check, count, onProgress, recorder }: LoadOptions) {
  let next = 0;
  return runSessions({
    client,
    sessions: client.connections,
    maxSeconds,
    onProgress,
    recorder,
    session: async (_, call, timeLeft) => {
      while (next < total && timeLeft() > 0) await call(makeRequest(next++), { check, count });
    },
  });
}
