/**
 * A single large record whose body is a byte stream, as an HTTP request body is: it is read in
 * large BYOB reads, each timed with the I/O timeout (`RS_IO_OPERATION_TIMEOUT`, 1 s here). Every
 * outcome of such a body, as a plain JS stream and as a runtime-native one: exact (stored), short,
 * long, broken and stalled (400, nothing stored, reservation released, timestamp free again), and
 * a slow body that never pauses for the timeout (stored, however long it takes in all). Batch
 * bodies are read the same way.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { api, BASE, expectError, TOKEN, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket, sha256 } from "../helpers/records";

const IO_TIMEOUT_S = 1;
const KIB = 1024;

/** What the client sends: pieces of bytes with pauses before them, then how the body ends. */
interface Plan {
  pieces: { bytes: number; pauseMs?: number }[];
  end: "close" | "error" | "hang";
}

interface SentBody {
  stream: ReadableStream<Uint8Array>;
  sent: Uint8Array;
  /** Resolves true when the server cancels the body. */
  cancelled: Promise<boolean>;
  /** How many times the server pulled (JS byte stream only). */
  pulls: () => number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function payloadOf(plan: Plan): Uint8Array {
  return bytesOf(
    plan.pieces.reduce((sum, piece) => sum + piece.bytes, 0),
    5,
  );
}

/** A JS byte stream (type "bytes") that answers BYOB requests and enqueues 64 KiB otherwise. */
function jsByteStream(plan: Plan): SentBody {
  const sent = payloadOf(plan);
  let offset = 0;
  let piece = 0;
  let leftInPiece = plan.pieces[0]?.bytes ?? 0;
  let pulls = 0;
  let markCancelled: (value: boolean) => void = () => {};
  const cancelled = new Promise<boolean>((resolve) => {
    markCancelled = resolve;
  });
  let paused = false;
  const stream = new ReadableStream({
    type: "bytes",
    async pull(controller) {
      pulls++;
      while (leftInPiece === 0 && piece < plan.pieces.length) {
        piece++;
        leftInPiece = plan.pieces[piece]?.bytes ?? 0;
        paused = false;
      }
      if (piece >= plan.pieces.length) {
        if (plan.end === "close") {
          controller.close();
          controller.byobRequest?.respond(0);
        } else if (plan.end === "error") controller.error(new Error("Network connection lost."));
        else await new Promise(() => {}); // never answers
        return;
      }
      const pause = plan.pieces[piece]?.pauseMs ?? 0;
      if (!paused && pause > 0) await sleep(pause);
      paused = true;
      const request = controller.byobRequest;
      const take = Math.min(leftInPiece, request?.view ? request.view.byteLength : 64 * KIB);
      const chunk = sent.subarray(offset, offset + take);
      offset += take;
      leftInPiece -= take;
      if (request?.view) {
        new Uint8Array(request.view.buffer, request.view.byteOffset, take).set(chunk);
        request.respond(take);
      } else controller.enqueue(chunk.slice());
    },
    cancel() {
      markCancelled(true);
    },
  });
  return { stream, sent, cancelled, pulls: () => pulls };
}

/** A runtime-native byte stream (IdentityTransformStream) fed by a writer. */
function nativeByteStream(plan: Plan): SentBody {
  const sent = payloadOf(plan);
  const pipe = new IdentityTransformStream();
  const writer = pipe.writable.getWriter();
  let markCancelled: (value: boolean) => void = () => {};
  const cancelled = new Promise<boolean>((resolve) => {
    markCancelled = resolve;
  });
  const feed = async () => {
    let offset = 0;
    for (const piece of plan.pieces) {
      if (piece.pauseMs) await sleep(piece.pauseMs);
      await writer.write(sent.subarray(offset, offset + piece.bytes));
      offset += piece.bytes;
    }
    if (plan.end === "close") await writer.close();
    else if (plan.end === "error") await writer.abort(new Error("Network connection lost."));
    else {
      // Quiet past the timeout, then one more byte: its write fails if the server cancelled the body
      // (a cancelled native stream does not settle the writer's `closed`).
      await sleep(IO_TIMEOUT_S * 1000 + 500);
      await writer.write(new Uint8Array(1));
    }
  };
  void feed().catch(() => markCancelled(true));
  return { stream: pipe.readable, sent, cancelled, pulls: () => 0 };
}

async function upload(
  bucket: string,
  declared: number,
  body: SentBody,
  { path = `/b/${bucket}/e?ts=7`, headers = {} }: { path?: string; headers?: Record<string, string> } = {},
): Promise<{ response: Response; elapsedMs: number }> {
  const request = new Request(`${BASE}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-length": String(declared), ...headers },
    body: body.stream,
  });
  const started = Date.now();
  const response = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...env, RS_IO_OPERATION_TIMEOUT: String(IO_TIMEOUT_S) },
    createExecutionContext(),
  );
  return { response, elapsedMs: Date.now() - started };
}

const big = (bytes: number, pauseMs?: number) => ({ bytes, pauseMs });
const EXACT: Plan = { pieces: [big(700 * KIB), big(700 * KIB), big(700 * KIB), big(33)], end: "close" };
const EXACT_SIZE = 3 * 700 * KIB + 33;

interface Case {
  name: string;
  plan: Plan;
  declared: number;
  status: number;
  error?: string;
  minMs?: number;
}

/** A refused upload: its error, the body let go if it hung, and no trace of it left. */
async function expectRefused(bucket: string, testCase: Case, body: SentBody, response: Response): Promise<void> {
  await expectError(response, testCase.status, testCase.error ?? "");
  if (testCase.plan.end === "hang") {
    // The body is let go, so the connection is not held.
    const timeout = sleep(2000).then(() => false);
    expect(await Promise.race([body.cancelled, timeout])).toBe(true);
  }
  // Nothing stored, the reservation released, the timestamp free again.
  await expectError(await api("GET", `/b/${bucket}/e?ts=7`), 404, `Record 7 not found in entry ${bucket}/e`);
  expect((await bucketInfo(bucket)).info.size).toBe(0);
  const retry = await api("POST", `/b/${bucket}/e?ts=7`, { body: bytesOf(600 * KIB, 2) });
  await retry.arrayBuffer();
  expect(retry.status).toBe(200);
}

const cases: Case[] = [
  { name: "exact body across several reads", plan: EXACT, declared: EXACT_SIZE, status: 200 },
  {
    name: "slow body, never quiet for the timeout, longer than it in all",
    plan: { pieces: [1, 2, 3, 4, 5].map(() => big(64 * KIB, 400)), end: "close" },
    declared: 5 * 64 * KIB,
    status: 200,
    minMs: 1900,
  },
  {
    name: "short body",
    plan: { pieces: [big(600 * KIB)], end: "close" },
    declared: 600 * KIB + 1,
    status: 400,
    error: "Content is shorter than expected: no more data to read",
  },
  {
    name: "long body",
    plan: { pieces: [big(600 * KIB), big(1)], end: "close" },
    declared: 600 * KIB,
    status: 400,
    error: "Content is bigger than expected in content-length header",
  },
  {
    name: "broken body",
    plan: { pieces: [big(200 * KIB)], end: "error" },
    declared: 600 * KIB,
    status: 400,
    error: "Content is shorter than expected: no more data to read",
  },
  {
    name: "stalled body",
    plan: { pieces: [big(200 * KIB)], end: "hang" },
    declared: 600 * KIB,
    status: 400,
    error: "Timeout while receiving data",
    minMs: IO_TIMEOUT_S * 1000 - 50,
  },
];

const unhandled: string[] = [];
const onUnhandledRejection = (event: PromiseRejectionEvent) => {
  unhandled.push(String(event.reason));
};

describe("a large single record sent as a byte stream", () => {
  beforeAll(() => addEventListener("unhandledrejection", onUnhandledRejection));
  afterAll(() => removeEventListener("unhandledrejection", onUnhandledRejection));
  for (const [kind, make] of [
    ["JS byte stream", jsByteStream],
    ["native byte stream", nativeByteStream],
  ] as const) {
    for (const testCase of cases) {
      it(`${kind}: ${testCase.name} → ${testCase.status}`, { timeout: 15_000 }, async () => {
        const bucket = uniqueName("bytes");
        await createBucket(bucket);
        const unhandledBefore = unhandled.length;
        const body = make(testCase.plan);
        const { response, elapsedMs } = await upload(bucket, testCase.declared, body);
        if (testCase.minMs !== undefined) expect(elapsedMs).toBeGreaterThanOrEqual(testCase.minMs);
        expect(elapsedMs).toBeLessThan(8000);
        if (testCase.status === 200) {
          expect(response.status).toBe(200);
          await response.arrayBuffer();
          const stored = await api("GET", `/b/${bucket}/e?ts=7`);
          expect(stored.status).toBe(200);
          expect(await sha256(await stored.arrayBuffer())).toBe(await sha256(body.sent));
        } else await expectRefused(bucket, testCase, body, response);
        // No promise of ours left rejected without a handler (late ones included).
        await sleep(100);
        expect(unhandled.slice(unhandledBefore)).toEqual([]);
      });
    }
  }

  // 1 MiB reads: a few and one that sees the end (a default reader took hundreds of small chunks).
  for (const [what, sizes, maxPulls, batch] of [
    ["a single record", [3 * KIB * KIB], 6, false],
    ["a v1 batch with a large record", [10, 3 * KIB * KIB], 6, true],
    ["a v1 batch of 80 small records", Array.from({ length: 80 }, () => KIB), 3, true],
  ] as const) {
    it(`${what} is read in few large reads, not in small chunks`, async () => {
      const bucket = uniqueName("bytes");
      await createBucket(bucket);
      const total = sizes.reduce((sum, size) => sum + size, 0);
      const body = jsByteStream({ pieces: [big(total)], end: "close" });
      const headers = Object.fromEntries(sizes.map((size, i) => [`x-reduct-time-${i + 1}`, `${size},text/plain`]));
      const { response } = await upload(bucket, total, body, batch ? { path: `/b/${bucket}/e/batch`, headers } : {});
      expect(response.status).toBe(200);
      expect(response.headers.get("x-reduct-error")).toBeNull();
      await response.arrayBuffer();
      expect(body.pulls()).toBeLessThanOrEqual(maxPulls);
      const last = await api("GET", `/b/${bucket}/e?ts=${batch ? sizes.length : 7}`);
      expect(await sha256(await last.arrayBuffer())).toBe(await sha256(body.sent.subarray(total - (sizes.at(-1) ?? 0))));
    });
  }
});
