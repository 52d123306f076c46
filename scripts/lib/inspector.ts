// Diagnostics of the soak (`--inspect`, Miniflare servers only): V8 heap figures of every isolate of
// a local workerd, read through workerd's own inspector (Chrome DevTools protocol on localhost, the
// port given to Miniflare's `inspectorPort`). Nothing of this is in the product: no endpoint of the
// Worker is involved. `ws` is Miniflare's WebSocket client (a dependency of miniflare/wrangler).

/// <reference path="./ws.d.ts" />

/** What one isolate answered a CDP command (its result), or why it did not. */
type IsolateAnswer = {
  timedOut?: boolean;
  error?: string;
  usedSize?: number;
  totalSize?: number;
  backingStorageSize?: number;
};

/** A CDP answer: `{ id, result }` or `{ id, error }`. */
interface CdpMessage {
  id?: number;
  result?: IsolateAnswer;
  error?: { message?: string };
}

/** V8 heap figures of an isolate, in KiB. */
export interface HeapFigures {
  used: number;
  total: number;
  backing: number;
}

export interface HeapUsage {
  user: HeapFigures | undefined;
  all: HeapFigures;
  isolates: Record<string, HeapFigures>;
}

/** Sends CDP `method` to every isolate of the workerd whose inspector is on `port`; id → result. */
async function eachIsolate(port: number, method: string, timeoutMs = 20_000): Promise<Record<string, IsolateAnswer>> {
  const { default: WebSocket } = await import("ws");
  const response = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5_000) });
  const targets = (await response.json()) as { id: string; webSocketDebuggerUrl: string }[];
  const out: Record<string, IsolateAnswer> = {};
  await Promise.all(
    targets.map(
      (target) =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(target.webSocketDebuggerUrl);
          const timer = setTimeout(() => {
            out[target.id] = { timedOut: true };
            ws.terminate();
            resolve();
          }, timeoutMs);
          ws.on("open", () => ws.send(JSON.stringify({ id: 1, method, params: {} })));
          ws.on("message", (data) => {
            const message = JSON.parse(data.toString()) as CdpMessage;
            if (message.id !== 1) return;
            out[target.id] = message.result ?? { error: message.error?.message };
            clearTimeout(timer);
            ws.close();
            resolve();
          });
          ws.on("error", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
  return out;
}

/**
 * `{ user, all }` in KiB: V8 heap of the isolate running the Worker (and its Durable Objects;
 * `core:user:`, Miniflare's name for the user's worker) and summed over all isolates (the user's
 * plus Miniflare's entry, R2, D1, cache workers): `used` = live and not yet collected objects,
 * `total` = heap reserved by V8, `backing` = ArrayBuffer backing stores outside the heap; and
 * `isolates`, the same per isolate.
 */
export async function heapUsage(port: number): Promise<HeapUsage> {
  const byIsolate = await eachIsolate(port, "Runtime.getHeapUsage");
  const kib = (n: number | undefined): number => Math.round((n ?? 0) / 1024);
  const pick = (usage: IsolateAnswer): HeapFigures => ({
    used: kib(usage?.usedSize),
    total: kib(usage?.totalSize),
    backing: kib(usage?.backingStorageSize),
  });
  const all = { used: 0, total: 0, backing: 0 };
  const isolates: Record<string, HeapFigures> = {};
  for (const [id, usage] of Object.entries(byIsolate)) {
    if (usage?.timedOut || usage?.error) continue;
    const one = pick(usage);
    isolates[id] = one;
    all.used += one.used;
    all.total += one.total;
    all.backing += one.backing;
  }
  // Miniflare names the user's worker `core:user:`; wrangler's devtools proxy shows only that one.
  const ids = Object.keys(byIsolate);
  const user = byIsolate["core:user:"] ?? (ids.length === 1 && ids[0] !== undefined ? byIsolate[ids[0]] : undefined);
  return { user: user && !user.timedOut && !user.error ? pick(user) : undefined, all, isolates };
}

/**
 * A full garbage collection in every isolate (CDP HeapProfiler.collectGarbage). workerd runs such a
 * command only when the isolate has something to do, so the caller keeps the isolates busy with a
 * few requests meanwhile. Resolves with the ids of the isolates that did not answer in `timeoutMs`
 * (idle ones: Miniflare's cache workers, or R2/D1 when the requests do not reach them).
 */
export async function collectGarbage(port: number, timeoutMs = 15_000): Promise<string[]> {
  const results = await eachIsolate(port, "HeapProfiler.collectGarbage", timeoutMs);
  const failed = Object.entries(results).filter(([, result]) => result?.error);
  if (failed.length) throw new Error(`collectGarbage failed in ${failed.map(([id, r]) => `${id}: ${r.error}`).join(", ")}`);
  return Object.entries(results)
    .filter(([, result]) => result?.timedOut)
    .map(([id]) => id);
}
