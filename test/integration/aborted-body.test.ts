/**
 * A client that goes away mid-body (the runtime errors the request body with `Network connection
 * lost.`) is the client's end of the request, not a server fault: 400, no `unhandled error` log,
 * nothing changed. Every body-reading path: JSON bodies, single records, v1 and v2 batches.
 *
 * workerd prints one `Uncaught (in promise) … Can't read from request stream because client
 * disconnected` line for the single large record: it is the local R2 simulator reading the aborted
 * put, not this code (a bare `env.RECORDS.put` of an aborted stream, every promise handled, prints
 * it too); `npm start` prints nothing for the same disconnect.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { SMALL_RECORD_MAX_BYTES } from "../../src/storage/blocks";
import { api, BASE, TOKEN, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

/** A body that sends `sent` bytes, then fails the way a dropped connection does. */
function droppedBody(sent: number): ReadableStream<Uint8Array> {
  let pulls = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulls++ === 0) controller.enqueue(new Uint8Array(sent).fill(65));
      else controller.error(new Error("Network connection lost."));
    },
  });
}

async function send(method: string, path: string, headers: Record<string, string>, sent: number): Promise<Response> {
  const request = new Request(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
    body: droppedBody(sent),
  });
  return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, env, createExecutionContext());
}

const json = { "content-type": "application/json", "content-length": "1000" };
const cases: Array<[string, string, (bucket: string) => string, Record<string, string>, number]> = [
  ["bucket create", "POST", (bucket) => `/b/${bucket}-new`, json, 10],
  ["bucket settings", "PUT", (bucket) => `/b/${bucket}`, json, 10],
  ["bucket rename", "PUT", (bucket) => `/b/${bucket}/rename`, json, 10],
  ["entry rename", "PUT", (bucket) => `/b/${bucket}/e/rename`, json, 10],
  ["token create", "POST", (bucket) => `/tokens/${bucket}-token`, json, 10],
  ["v1 query", "POST", (bucket) => `/b/${bucket}/e/q`, json, 10],
  ["v2 query", "POST", (bucket) => `/io/${bucket}/q`, json, 10],
  ["single small record", "POST", (bucket) => `/b/${bucket}/s?ts=1`, { "content-length": "1000" }, 100],
  [
    "single large record",
    "POST",
    (bucket) => `/b/${bucket}/l?ts=1`,
    { "content-length": String(SMALL_RECORD_MAX_BYTES * 4) },
    SMALL_RECORD_MAX_BYTES * 2,
  ],
  [
    "v1 batch",
    "POST",
    (bucket) => `/b/${bucket}/v1/batch`,
    { "content-length": "1000", "x-reduct-time-1": "500", "x-reduct-time-2": "500" },
    600,
  ],
  [
    "v2 write",
    "POST",
    (bucket) => `/io/${bucket}/write`,
    {
      "content-length": "1000",
      "x-reduct-entries": "v2",
      "x-reduct-start-ts": "1",
      "x-reduct-0-0": "500",
      "x-reduct-0-1": "500",
    },
    600,
  ],
];

describe("a client that disconnects mid-body", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each(cases)("%s: a client error, not an unhandled server error", async (_, method, path, headers, sent) => {
    const bucket = uniqueName("aborted");
    await createBucket(bucket);
    const written = await api("POST", `/b/${bucket}/e?ts=1`, { body: "x" });
    await written.arrayBuffer();
    const errors = vi.spyOn(console, "error");
    const response = await send(method, path(bucket), headers, sent);
    await response.arrayBuffer();
    const logged = errors.mock.calls.map((call) => call.map(String).join(" "));
    expect(logged.filter((line) => line.includes("unhandled error"))).toEqual([]);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });
});
