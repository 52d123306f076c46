/**
 * Bad-input suite (reliability.md T5; issue 7 part 3), through the Worker's fetch handler.
 *
 * Oracle for every case: the status is the expected 4xx (never a 5xx), the response carries
 * `x-reduct-api` and `x-reduct-error`, a non-empty body is JSON `{"detail"}` with the same message,
 * /alive still answers 200, and the digest of stored state (test/helpers/digest.ts: bucket
 * documents, every record's header and sha256, /list and /tokens) equals the baseline taken after
 * the fixture was written.
 *
 * Table rows ("Bad inputs" in ../shared/reliability.md) covered: 1–15, 17–37, each test named
 * `row N`. Left out or adapted, and why:
 * - Row 16 (body stalls longer than RS_IO_OPERATION_TIMEOUT, 30 s): left out. The port has no
 *   receive timeout of its own (the Workers runtime owns the connection), and a 30 s stall does
 *   not fit the CI budget; a client that goes away mid-body is covered instead (rows 14/15).
 * - Rows 14/15 (short/long bodies, client closes): there is no socket inside workerd, so they are
 *   sent as a declared length with a body of another length, or a stream that errors mid-body.
 * - Row 24 answers 200 by design (per-record `x-reduct-error-<ts>` headers): checked with the same
 *   digest, but with status 200.
 * - Row 37 (write while the bucket/entry is being deleted): deletion is synchronous here (index
 *   first, R2 later; no DELETING state), so there is no such window. The transient state that does
 *   exist is a bucket rename in progress, which answers 409 `Bucket 'b' is being renamed`; that is
 *   tested instead by marking the object as renaming.
 * Rows 38–45 (auth, rate limits, disk) are outside this suite (auth-matrix.test.ts covers 38–42).
 *
 * Generated cases use fast-check with a fixed seed (SEED below, printed): names, timestamps,
 * label header maps, v1 batch header mutations, `when` mutations, query parameters and JSON
 * bodies. Every distinct request is counted; the last test asserts the count.
 */
import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { headerSafeMessage } from "../../src/errors";
import { DIRECTIVE_NAMES } from "../../src/query/condition/directives";
import { findOperator } from "../../src/query/condition/operators/registry";
import { bucketDigest, type StateDigest, stateDigest } from "../helpers/digest";
import { api, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

const SEED = 20_260_707;
/** Runs per generated family; each run is one request plus a full digest. */
const RUNS = 40;
const MIN_DISTINCT_CASES = 60;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const SHORT_BODY = "Content is shorter than expected: no more data to read";
const LONG_BODY = "Content is bigger than expected in content-length header";
const TS_MESSAGE = "'ts' must be an unix timestamp in microseconds";
const BUCKET_NAME_MESSAGE = "Bucket or entry name can contain only letters, digests and [-,_] symbols";
const ENTRY_CHARS = "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'";
const EMPTY_SEGMENT = "Entry name must be non-empty and must not contain empty path segments";
const INVALID_BATCHED = "Invalid batched header";
const SUM_MISMATCH = "content-length header does not match the sum of the content-lengths in the headers";
const NO_REMOVE_PARAMS = "Define at least one query parameter to delete records";

const VICTIM = uniqueName("victim");
const HARD = uniqueName("hard");
const FIFO = uniqueName("fifo");
const PENDING = uniqueName("pending");
const READER_TOKEN = uniqueName("reader");
/** A bucket name and a token name no case may ever create. */
const NEVER = uniqueName("never");
const NEVER_TOKEN = uniqueName("never-token");
const DIGESTED = [VICTIM, HARD, FIFO, PENDING];
const LARGE = bytesOf(200_000, 42);

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const text = (value: string) => new TextEncoder().encode(value);

let baseline: StateDigest;
/** Buckets tests create on purpose after the baseline; left out of the /list comparison. */
const scratch = new Set<string>();
const distinct = new Set<string>();
let checked = 0;
/** Promise rejections nobody handled, in the Worker (the tests' isolate is the Worker's). */
const unhandled: string[] = [];
function onUnhandledRejection(event: PromiseRejectionEvent): void {
  unhandled.push(String(event.reason));
}

// ---- the oracle ---------------------------------------------------------------------------------

type BodySpec = string | Uint8Array | { stream: () => ReadableStream<Uint8Array>; describe: string };

interface Case {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: BodySpec;
  /** Expected status (one, or any of a set). */
  status: number | readonly number[];
  /** Exact `x-reduct-error`, or a pattern it must match. */
  message?: string | RegExp;
}

/** FNV-1a over UTF-16 code units: a compact, deterministic fingerprint for case keys. */
function fingerprint(value: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `${value.length}#${hash.toString(16)}`;
}

/** What makes two cases the same request: method, path, headers and body. */
function caseKey(c: Case): string {
  const headers = Object.entries(c.headers ?? {})
    .map(([k, v]) => `${k.toLowerCase()}:${v.length > 64 ? fingerprint(v) : v}`)
    .sort()
    .join("\n");
  let body = "";
  if (typeof c.body === "string") body = fingerprint(c.body);
  else if (c.body instanceof Uint8Array) body = fingerprint(new TextDecoder("latin1").decode(c.body));
  else if (c.body) body = `stream:${c.body.describe}`;
  const path = c.path.length > 200 ? fingerprint(c.path) : c.path;
  return `${c.method} ${path}\n${fingerprint(headers)}\n${body}`;
}

function bodyOf(spec: BodySpec | undefined): BodyInit | undefined {
  if (spec === undefined || typeof spec === "string" || spec instanceof Uint8Array) return spec;
  return spec.stream();
}

/** The error contract of one response: status, `x-reduct-api`, `x-reduct-error`, `{"detail"}`. */
async function expectErrorContract(response: Response, c: Case, label: string): Promise<void> {
  const body = await response.text();
  const allowed = typeof c.status === "number" ? [c.status] : c.status;
  const error = response.headers.get("x-reduct-error");
  const summary = { status: response.status, error, detail: body.slice(0, 300) };
  expect(response.status, `${label}: never a 5xx (${JSON.stringify(summary)})`).toBeLessThan(500);
  expect(allowed, `${label}: status (${JSON.stringify(summary)})`).toContain(response.status);
  expect(response.headers.get("x-reduct-api"), `${label}: x-reduct-api`).toMatch(/^1\.\d+$/);
  expect(error, `${label}: x-reduct-error`).not.toBeNull();
  if (c.method !== "HEAD") {
    expect(response.headers.get("content-type"), `${label}: content-type`).toBe("application/json");
    const detail = (JSON.parse(body) as { detail: unknown }).detail;
    expect(typeof detail, `${label}: {"detail"}`).toBe("string");
    // The header carries the exact message, non-visible-ASCII chars percent-escaped.
    expect(headerSafeMessage(String(detail)), `${label}: x-reduct-error = escaped detail`).toBe(error);
    const message = String(detail);
    if (typeof c.message === "string") expect(message, label).toBe(c.message);
    else if (c.message) expect(message, label).toMatch(c.message);
  } else if (typeof c.message === "string") expect(error, label).toBe(c.message);
  else if (c.message) expect(error, label).toMatch(c.message);
}

async function expectAlive(): Promise<void> {
  const alive = await api("GET", "/alive", { token: null });
  await alive.text();
  expect(alive.status, "/alive after the case").toBe(200);
}

async function expectUnchanged(label: string): Promise<void> {
  const digest = await stateDigest(DIGESTED);
  digest.list = digest.list.filter((name) => !scratch.has(name));
  expect(digest, `${label}: stored state unchanged`).toEqual(baseline);
}

/** Sends one bad request and applies the whole oracle. */
async function rejects(c: Case, label = `${c.method} ${c.path.slice(0, 120)}`): Promise<void> {
  distinct.add(caseKey(c));
  checked++;
  const unhandledBefore = unhandled.length;
  const response = await api(c.method, c.path, { headers: c.headers, body: bodyOf(c.body) });
  await expectErrorContract(response, c, label);
  await expectAlive();
  await expectUnchanged(label);
  // No unhandled promise rejection in the Worker (T1: zero uncaught exceptions). A large upload whose
  // body failed mid-stream used to leave one behind (streamToR2's pipe chain); fixed by its pump loop.
  expect(unhandled.slice(unhandledBefore), `${label}: unhandled promise rejections`).toEqual([]);
}

/** Runs a fast-check family with the fixed seed; every generated case goes through `rejects`. */
async function property(name: string, arbitrary: fc.Arbitrary<Case>, runs = RUNS): Promise<void> {
  const before = checked;
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => rejects(c, `${name}: ${c.method} ${c.path.slice(0, 120)}`)),
      { seed: SEED, numRuns: runs, endOnFailure: true },
    );
  } catch (error) {
    // Counterexamples can be megabytes (deep `when`, huge labels): keep the report readable.
    const cause = (error as { cause?: unknown }).cause;
    const text = (value: unknown) => (value instanceof Error ? value.message : String(value));
    throw new Error(`${text(error).slice(0, 1500)}…\ncaused by: ${text(cause).slice(0, 1500)}`);
  }
  expect(checked - before, `${name}: cases run`).toBeGreaterThanOrEqual(Math.floor(runs / 2));
}

function streamOf(chunks: readonly Uint8Array[], failAfter = false): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      if (failAfter) controller.error(new Error("client went away"));
      else controller.close();
    },
  });
}

// ---- fixture ------------------------------------------------------------------------------------

beforeAll(async () => {
  addEventListener("unhandledrejection", onUnhandledRejection);
  console.log(`bad-input suite: fast-check seed ${SEED}, ${RUNS} runs per generated family`);
  await createBucket(VICTIM);
  await putRecord(VICTIM, "e", 1, "one", { contentType: "text/plain", labels: { a: "1", b: "x" } });
  await putRecord(VICTIM, "e", 2, "");
  await putRecord(VICTIM, "e", 3, bytesOf(1000, 3));
  await putRecord(VICTIM, "e", 100, LARGE, { labels: { big: "true" } });
  await putRecord(VICTIM, "a/b", 5, "ab");
  await createBucket(HARD, { quota_type: "HARD", quota_size: 500 });
  await putRecord(HARD, "e", 1, bytesOf(300, 1));
  await createBucket(FIFO, { quota_type: "FIFO", quota_size: 1000 });
  await putRecord(FIFO, "e", 1, bytesOf(100, 1));
  await createBucket(PENDING);
  await putRecord(PENDING, "e", 1, "done");
  // An upload in flight (row 34): the timestamp is reserved, its bytes never arrive.
  const ticket = await stubOf(PENDING).reserveUpload({
    entry: "e",
    ts: 7,
    size: 1_000_000,
    contentType: "application/octet-stream",
    labels: {},
  });
  expect(ticket.ok).toBe(true);
  const token = await api("POST", `/tokens/${READER_TOKEN}`, { body: JSON.stringify({ permissions: { read: [VICTIM] } }) });
  expect(token.status).toBe(200);
  await token.text();
  baseline = await stateDigest(DIGESTED);
  expect(baseline.buckets[VICTIM]?.records?.e?.length).toBe(4);
  expect(baseline.buckets[PENDING]?.records?.e?.length).toBe(1);
});

afterAll(() => {
  removeEventListener("unhandledrejection", onUnhandledRejection);
  console.log(`bad-input suite: ${checked} cases checked, ${distinct.size} distinct requests`);
});

// ---- the table ----------------------------------------------------------------------------------

describe("bad inputs from the reliability table", () => {
  it("row 34: a record still being written is 425 to reads and 409 to writes", async () => {
    const message = `Record with timestamp 7 in ${PENDING}/e is still being written`;
    await rejects({ method: "GET", path: `/b/${PENDING}/e?ts=7`, status: 425, message });
    await rejects({ method: "HEAD", path: `/b/${PENDING}/e?ts=7`, status: 425, message });
    await rejects({ method: "PATCH", path: `/b/${PENDING}/e?ts=7`, headers: { "x-reduct-label-x": "1" }, status: 425, message });
    await rejects({
      method: "POST",
      path: `/b/${PENDING}/e?ts=7`,
      body: "x",
      status: 409,
      message: "A record with timestamp 7 already exists",
    });
  });

  it("row 1: invalid bucket names are 422", async () => {
    for (const name of ["my.bucket", "b%C3%BC", "a%20b", "a%2Fb", "%24system", "x".repeat(257)]) {
      await rejects({
        method: "POST",
        path: `/b/${name}`,
        status: 422,
        message: name.length > 256 ? "Bucket name must be at most 256 characters" : BUCKET_NAME_MESSAGE,
      });
    }
  });

  it("row 2: creating a bucket that exists is 409", async () => {
    await rejects({ method: "POST", path: `/b/${VICTIM}`, status: 409, message: `Bucket '${VICTIM}' already exists` });
    await rejects({
      method: "POST",
      path: `/b/${HARD}`,
      body: JSON.stringify({ quota_type: "NONE" }),
      status: 409,
      message: `Bucket '${HARD}' already exists`,
    });
  });

  it("row 3: bucket create/update with non-JSON or an unknown quota type is 422", async () => {
    for (const [method, path] of [
      ["POST", `/b/${NEVER}`],
      ["PUT", `/b/${VICTIM}`],
    ] as const) {
      await rejects({ method, path, body: "not json", status: 422, message: /^Invalid JSON: / });
      await rejects({ method, path, body: '{"quota_type": "UNKNOWN"}', status: 422, message: /^Invalid JSON: quota_type/ });
      await rejects({ method, path, body: '{"quota_size": -1}', status: 422, message: /^Invalid JSON: quota_size/ });
    }
  });

  it("row 4: entry names with invalid characters are 422 (after percent-decoding)", async () => {
    for (const entry of ["e.1", "a%20b", "e%2E1", "a%2Fb.c", "%C3%BC", "e%3F"]) {
      await rejects({ method: "POST", path: `/b/${VICTIM}/${entry}?ts=50`, body: "x", status: 422, message: ENTRY_CHARS });
    }
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/${"e".repeat(513)}?ts=50`,
      body: "x",
      status: 422,
      message: "Entry name must be at most 512 characters",
    });
  });

  it("row 5: entry names with empty segments are 422", async () => {
    for (const entry of ["a//b", "a/", "a%2F%2Fb", "a%2F", "%2Fa"]) {
      await rejects({ method: "POST", path: `/b/${VICTIM}/${entry}?ts=50`, body: "x", status: 422, message: EMPTY_SEGMENT });
    }
  });

  it("row 6: a $meta record without label 'key' is 422", async () => {
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/$meta?ts=50`,
      body: "{}",
      status: 422,
      message: "System entry 'e/$meta' records must contain label 'key'",
    });
  });

  it("row 7: writing to a missing bucket is 404", async () => {
    const missing = uniqueName("missing");
    await rejects({
      method: "POST",
      path: `/b/${missing}/e?ts=1`,
      body: "x",
      status: 404,
      message: `Bucket '${missing}' is not found`,
    });
    await rejects({
      method: "POST",
      path: `/b/${missing}/e?ts=1`,
      body: LARGE,
      status: 404,
      message: `Bucket '${missing}' is not found`,
    });
  });

  it("rows 8-10: missing, malformed and out-of-range ts are 422", async () => {
    await rejects({ method: "POST", path: `/b/${VICTIM}/e`, body: "x", status: 422, message: "'ts' parameter is required" });
    await rejects({ method: "PATCH", path: `/b/${VICTIM}/e`, status: 422, message: "'ts' parameter is required" });
    for (const ts of ["-1", "1.5", "1e3", "abc", "", "18446744073709551616", "9007199254740992", "0x10", "%201"]) {
      await rejects({ method: "POST", path: `/b/${VICTIM}/e?ts=${ts}`, body: "x", status: 422, message: TS_MESSAGE });
    }
    await rejects({ method: "GET", path: `/b/${VICTIM}/e?ts=1.0`, status: 422, message: TS_MESSAGE });
    await rejects({ method: "DELETE", path: `/b/${VICTIM}/e?ts=-5`, status: 422, message: TS_MESSAGE });
    await rejects({ method: "DELETE", path: `/b/${VICTIM}/e?foo=1`, status: 422, message: "'ts' parameter is required" });
  });

  it("row 11: a second write at the same ts is 409, small or large, and keeps the first", async () => {
    for (const [ts, body] of [
      [1, "other"],
      [1, LARGE],
      [100, "small"],
      [100, bytesOf(200_000, 9)],
    ] as const) {
      await rejects({
        method: "POST",
        path: `/b/${VICTIM}/e?ts=${ts}`,
        body,
        status: 409,
        message: `A record with timestamp ${ts} already exists`,
      });
    }
  });

  it("rows 12-13: no declared length, or a non-numeric one, is 422", async () => {
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e?ts=60`,
      body: { stream: () => streamOf([text("abc")]), describe: "abc, no length" },
      status: 422,
      message: "content-length header is required",
    });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e?ts=60`,
      headers: { "x-reduct-content-length": "abc" },
      body: { stream: () => streamOf([text("abc")]), describe: "abc" },
      status: 422,
      message: "x-reduct-content-length header must be a number",
    });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e?ts=60`,
      headers: { "content-length": "-3" },
      body: "abc",
      status: 422,
      message: "content-length header must be a number",
    });
  });

  it("rows 14-15: a body shorter or longer than declared, or cut off, is 400 and stores nothing", async () => {
    const variants: Array<[string, Record<string, string>, BodySpec, string]> = [
      ["short, content-length", { "content-length": "10" }, "short", SHORT_BODY],
      ["long, content-length", { "content-length": "2" }, "longer", LONG_BODY],
      [
        "short stream",
        { "x-reduct-content-length": "10" },
        { stream: () => streamOf([text("abc")]), describe: "3/10" },
        SHORT_BODY,
      ],
      [
        "long stream",
        { "x-reduct-content-length": "3" },
        { stream: () => streamOf([text("abc"), text("def")]), describe: "6/3" },
        LONG_BODY,
      ],
      [
        "aborted stream",
        { "x-reduct-content-length": "10" },
        { stream: () => streamOf([text("abc")], true), describe: "abort 3/10" },
        SHORT_BODY,
      ],
      [
        "large short stream",
        { "x-reduct-content-length": "300000" },
        { stream: () => streamOf([bytesOf(100_000, 1)]), describe: "100000/300000" },
        SHORT_BODY,
      ],
      [
        "large long stream",
        { "x-reduct-content-length": "150000" },
        { stream: () => streamOf([bytesOf(100_000, 1), bytesOf(100_000, 2)]), describe: "200000/150000" },
        LONG_BODY,
      ],
      ["large short, content-length", { "content-length": "300000" }, bytesOf(1000, 1), SHORT_BODY],
      // Used to leave an unhandled rejection behind (see `rejects`).
      [
        "large aborted stream",
        { "x-reduct-content-length": "300000" },
        { stream: () => streamOf([bytesOf(150_000, 1)], true), describe: "abort 150000/300000" },
        SHORT_BODY,
      ],
    ];
    for (const [label, headers, body, message] of variants) {
      await rejects({ method: "POST", path: `/b/${VICTIM}/e?ts=61`, headers, body, status: 400, message }, label);
    }
  });

  it("rows 17-19: non-ASCII label values, malformed content types and oversized labels are 422", async () => {
    const write = (headers: Record<string, string>, message: string | RegExp) =>
      rejects({ method: "POST", path: `/b/${VICTIM}/e?ts=62`, headers, body: "x", status: 422, message });
    await write({ "x-reduct-label-k": "caf\u00e9" }, "Label values for x-reduct-label-k must be valid UTF-8 strings");
    await write({ "x-reduct-label-k": "\u4e2d\u6587" }, "Label values for x-reduct-label-k must be valid UTF-8 strings");
    await write({ "x-reduct-label-k": "a\tb" }, "Label values for x-reduct-label-k must be valid UTF-8 strings");
    for (const type of ["text", "text/", "/plain", "text/plain; charset", 'text/plain; a="b', "text/pl ain", "a/b, c/d"]) {
      await write({ "content-type": type }, /^Malformed content-type header: /);
    }
    await write({ "x-reduct-label-k": "v".repeat(5000) }, "Label value of 'k' must be at most 4096 bytes");
    await write(
      Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`x-reduct-label-l${i}`, "v"])),
      "A record can have at most 128 labels",
    );
    await write(
      Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`x-reduct-label-l${i}`, "v".repeat(4000)])),
      "Labels of a record must be at most 12288 bytes in total as response headers (names, values and 19 bytes per label)",
    );
    await write({ [`x-reduct-label-${"n".repeat(300)}`]: "v" }, "Label names must be at most 256 bytes");
    await write({ "x-reduct-label-": "v" }, "Label names must not be empty");
    // The same checks on a label update leave the record's labels as they were.
    await rejects({
      method: "PATCH",
      path: `/b/${VICTIM}/e?ts=1`,
      headers: { "x-reduct-label-a": "\u00ff" },
      status: 422,
      message: "Label values for x-reduct-label-a must be valid UTF-8 strings",
    });
    await rejects({
      method: "PATCH",
      path: `/b/${VICTIM}/e?ts=1`,
      headers: { "x-reduct-label-a": "2", "x-reduct-label-b": "v".repeat(4097) },
      status: 422,
      message: "Label value of 'b' must be at most 4096 bytes",
    });
  });

  it("row 19: a batch whose headers exceed the budget is 431", async () => {
    const headers = Object.fromEntries(
      Array.from({ length: 130 }, (_, i) => [`x-reduct-time-${70_000 + i}`, `0,text/plain,k=${"v".repeat(4000)}`]),
    );
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/batch`,
      headers,
      body: "",
      status: 431,
      message: "Batched headers must be at most 512000 bytes in total",
    });
  });

  it("rows 20-22: malformed v1 batch headers and a length mismatch are 422, nothing written", async () => {
    const batch = (headers: Record<string, string>, body: string, message: string | RegExp) =>
      rejects({ method: "POST", path: `/b/${VICTIM}/e/batch`, headers, body, status: 422, message });
    await batch(
      { "x-reduct-time-abc": "1,text/plain", "x-reduct-time-80": "1,text/plain" },
      "xy",
      "Invalid header 'x-reduct-time-abc': must be an unix timestamp in microseconds",
    );
    await batch({ "x-reduct-time-80": "1,", "x-reduct-time-81": "5" }, "x12345", INVALID_BATCHED);
    await batch({ "x-reduct-time-80": "abc,text/plain" }, "x", "Invalid content length");
    await batch({ "x-reduct-time-80": '1,text/plain,k="abc' }, "x", INVALID_BATCHED);
    await batch(
      { "x-reduct-time-80": "1,text/plain", "x-reduct-time-81": "1,text/plain", "content-length": "3" },
      "xyz",
      SUM_MISMATCH,
    );
    await batch(
      { "x-reduct-time-80": "1,", "x-reduct-time-080": "1," },
      "xy",
      /^Invalid header 'x-reduct-time-0?80': timestamp 80 appears twice$/,
    );
  });

  it("row 23: a batch body shorter than its first record is 400 and writes nothing", async () => {
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/batch`,
      headers: { "x-reduct-time-90": "10,", "x-reduct-time-91": "10," },
      body: { stream: () => streamOf([text("12345")]), describe: "5 of 20" },
      status: 400,
      message: SHORT_BODY,
    });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/batch`,
      headers: { "x-reduct-time-90": "300000,", "x-reduct-time-91": "10," },
      body: { stream: () => streamOf([bytesOf(100_000, 5)], true), describe: "abort 100000 of 300010" },
      status: 400,
      message: SHORT_BODY,
    });
  });

  it("row 23: a truncated batch leaves each record readable or absent and writable again", async () => {
    const bucket = uniqueName("truncated");
    scratch.add(bucket);
    await createBucket(bucket);
    const first = bytesOf(50, 1);
    const second = bytesOf(200_000, 2);
    const body = new Uint8Array(50 + 100_000);
    body.set(first, 0);
    body.set(second.subarray(0, 100_000), 50);
    const response = await api("POST", `/b/${bucket}/e/batch`, {
      headers: { "x-reduct-time-1": "50,", "x-reduct-time-2": "200000,", "x-reduct-time-3": "5," },
      body: streamOf([body]),
    });
    await expectErrorContract(response, { method: "POST", path: "", status: 400, message: SHORT_BODY }, "truncated batch");
    for (const [ts, bytes] of [
      [1, first],
      [2, second],
      [3, text("abcde")],
    ] as const) {
      const read = await api("GET", `/b/${bucket}/e?ts=${ts}`);
      const got = new Uint8Array(await read.arrayBuffer());
      expect([200, 404], `record ${ts} after the truncated batch`).toContain(read.status);
      if (read.status === 200) {
        expect(await sha256(got)).toBe(await sha256(bytes));
        continue;
      }
      await putRecord(bucket, "e", ts, bytes);
      const again = await api("GET", `/b/${bucket}/e?ts=${ts}`);
      expect(await sha256(await again.arrayBuffer())).toBe(await sha256(bytes));
    }
    // Records received in full before the break stay written.
    expect((await bucketDigest(bucket)).records?.e?.map((r) => r.ts)).toEqual([1, 2, 3]);
  });

  it("row 24: a batch of duplicates or over the HARD quota is 200 with per-record errors, nothing written", async () => {
    const cases: Array<[string, Record<string, string>, string, Record<string, string>]> = [
      [
        VICTIM,
        { "x-reduct-time-1": "3,text/plain", "x-reduct-time-3": "2," },
        "abcde",
        {
          "x-reduct-error-1": "409,A record with timestamp 1 already exists",
          "x-reduct-error-3": "409,A record with timestamp 3 already exists",
        },
      ],
      [HARD, { "x-reduct-time-5": "300," }, "x".repeat(300), { "x-reduct-error-5": `400,Quota of '${HARD}' exceeded` }],
      [
        HARD,
        { "x-reduct-time-1": "3,", "x-reduct-time-6": "300," },
        "y".repeat(303),
        {
          "x-reduct-error-1": "409,A record with timestamp 1 already exists",
          "x-reduct-error-6": `400,Quota of '${HARD}' exceeded`,
        },
      ],
    ];
    for (const [bucket, headers, body, errors] of cases) {
      const c: Case = { method: "POST", path: `/b/${bucket}/e/batch`, headers, body, status: 200 };
      distinct.add(caseKey(c));
      checked++;
      const response = await api(c.method, c.path, { headers, body });
      await response.text();
      expect(response.status).toBe(200);
      expect(response.headers.get("x-reduct-api")).toMatch(/^1\.\d+$/);
      const reported = Object.fromEntries([...response.headers].filter(([name]) => name.startsWith("x-reduct-error-")));
      expect(reported).toEqual(errors);
      await expectAlive();
      await expectUnchanged(`row 24 ${bucket}`);
    }
  });

  it("rows 25-28: batched reads without q, unknown, malformed and expired query ids", async () => {
    await rejects({
      method: "GET",
      path: `/b/${VICTIM}/e/batch`,
      status: 422,
      message: "'q' parameter is required for batched reads",
    });
    const unknown = "Query 999999 not found and it might have expired. Check TTL in your query request.";
    await rejects({ method: "GET", path: `/b/${VICTIM}/e?q=999999`, status: 404, message: unknown });
    await rejects({ method: "GET", path: `/b/${VICTIM}/e/batch?q=999999`, status: 404, message: unknown });
    await rejects({
      method: "GET",
      path: `/io/${VICTIM}/read`,
      headers: { "x-reduct-query-id": "999999" },
      status: 404,
      message: unknown,
    });
    for (const q of ["abc", "-1", "1.5", "", "18446744073709551616"]) {
      await rejects({ method: "GET", path: `/b/${VICTIM}/e?q=${q}`, status: 422, message: "'query' must be a number" });
      await rejects({ method: "GET", path: `/b/${VICTIM}/e/batch?q=${q}`, status: 422, message: "'query' must be a number" });
    }
    // Row 28: a query whose TTL ran out (ttl 0: the first read is already too late).
    const created = await api("POST", `/b/${VICTIM}/e/q`, { body: JSON.stringify({ query_type: "QUERY", ttl: 0 }) });
    const { id } = (await created.json()) as { id: number };
    const expired = `Query ${id} not found and it might have expired. Check TTL in your query request.`;
    await rejects({ method: "GET", path: `/b/${VICTIM}/e/batch?q=${id}`, status: 404, message: expired });
    await rejects({ method: "GET", path: `/b/${VICTIM}/e?q=${id}`, status: 404, message: expired });
  });

  it("rows 29-30: malformed legacy query parameters and start > stop are 422", async () => {
    const legacy = (query: string, message: string) =>
      rejects({ method: "GET", path: `/b/${VICTIM}/e/q?${query}`, status: 422, message });
    await legacy("ttl=a", "'ttl' must be in seconds as an unsigned integer");
    await legacy("continuous=maybe", "'continue' must be a bool value");
    await legacy("start=x", "'start' must be an unix timestamp in microseconds");
    await legacy("stop=-1", "'stop' must be an unix timestamp in microseconds");
    await legacy("start=10&stop=5", "Start time must be before stop time");
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/q`,
      body: JSON.stringify({ query_type: "QUERY", start: 10, stop: 5 }),
      status: 422,
      message: "Start time must be before stop time",
    });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/q`,
      body: JSON.stringify({ query_type: "REMOVE", start: 10, stop: 5 }),
      status: 422,
      message: "Start time must be before stop time",
    });
    await rejects({
      method: "DELETE",
      path: `/b/${VICTIM}/e/q?start=10&stop=5`,
      status: 422,
      message: "Start time must be before stop time",
    });
  });

  it("row 31: malformed or oversized query JSON is 422/413", async () => {
    for (const body of ["{", '{"query_type": "QUERY",}', "[]", "null", '"QUERY"', '{"query_type": "SELECT"}', "{}"]) {
      await rejects({ method: "POST", path: `/b/${VICTIM}/e/q`, body, status: 422, message: /^Invalid JSON: / });
      await rejects({ method: "POST", path: `/io/${VICTIM}/q`, body, status: 422, message: /^Invalid JSON: / });
    }
    const huge = JSON.stringify({ query_type: "REMOVE", when: { "&a": { $eq: "x".repeat(1_100_000) } } });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/q`,
      body: huge,
      status: 413,
      message: "Request body is larger than 1048576 bytes",
    });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/q`,
      body: { stream: () => streamOf([text(huge)]), describe: "huge remove query, streamed" },
      status: 413,
      message: "Request body is larger than 1048576 bytes",
    });
  });

  it("row 32: unknown operators and directives, arrays and nulls in `when` are 422", async () => {
    const when = async (condition: string, message: string | RegExp) => {
      for (const queryType of ["QUERY", "REMOVE"]) {
        const body = `{"query_type": "${queryType}", "when": ${condition}}`;
        await rejects({ method: "POST", path: `/b/${VICTIM}/e/q`, body, status: 422, message });
        await rejects({
          method: "POST",
          path: `/io/${VICTIM}/q`,
          body: `{"query_type": "${queryType}", "entries": ["e"], "when": ${condition}}`,
          status: 422,
          message,
        });
      }
    };
    await when('{"&a": {"$x": 1}}', "Operator '$x' not supported");
    await when('{"#x": 1}', "Directive '#x' is not supported");
    await when('{"&a": {"$in": [1, 2]}}', "Array type is not supported: [1,2]");
    await when('{"&a": {"$eq": null}}', "Null type is not supported: null");
    await when('{"#ctx_before": null}', "Directive '#ctx_before' cannot be null");
    await when('{"&a": {"$eq": 18446744073709551616}}', /^Integer .* is outside the safe range/);
  });

  it("row 33: a remove query without parameters is 422 and removes nothing", async () => {
    await rejects({ method: "DELETE", path: `/b/${VICTIM}/e/q`, status: 422, message: NO_REMOVE_PARAMS });
    await rejects({
      method: "POST",
      path: `/b/${VICTIM}/e/q`,
      body: '{"query_type": "REMOVE"}',
      status: 422,
      message: NO_REMOVE_PARAMS,
    });
    await rejects({
      method: "POST",
      path: `/io/${VICTIM}/q`,
      body: '{"query_type": "REMOVE", "ttl": 5, "continuous": true}',
      status: 422,
      message: NO_REMOVE_PARAMS,
    });
  });

  it("row 35: writes over the HARD quota are 400, small or large", async () => {
    for (const body of [bytesOf(250, 2), bytesOf(200_000, 3)]) {
      await rejects({ method: "POST", path: `/b/${HARD}/e?ts=2`, body, status: 400, message: `Quota of '${HARD}' exceeded` });
    }
  });

  it("row 36: a record larger than the FIFO quota is refused up front and evicts nothing", async () => {
    for (const body of [bytesOf(2000, 2), bytesOf(200_000, 3)]) {
      await rejects({
        method: "POST",
        path: `/b/${FIFO}/e?ts=2`,
        body,
        status: 400,
        message: `Record of ${body.byteLength} bytes is larger than the quota of '${FIFO}'`,
      });
    }
    await rejects({
      method: "POST",
      path: `/b/${FIFO}/e/batch`,
      headers: { "x-reduct-time-2": `${101 * 1024 * 1024},` },
      body: { stream: () => streamOf([text("x")]), describe: "x of a 101 MiB batch record" },
      status: 413,
      message: `Record of ${101 * 1024 * 1024} bytes is larger than the limit of ${100 * 1024 * 1024} bytes`,
    });
    await rejects({
      method: "POST",
      path: `/b/${FIFO}/e?ts=3`,
      headers: { "x-reduct-content-length": String(101 * 1024 * 1024) },
      body: { stream: () => streamOf([text("x")]), describe: "x of 101 MiB" },
      status: 413,
      message: `Record of ${101 * 1024 * 1024} bytes is larger than the limit of ${100 * 1024 * 1024} bytes`,
    });
  });

  it("row 37 (adapted): writes while the bucket is being renamed are 409, nothing changes", async () => {
    const bucket = uniqueName("renaming");
    scratch.add(bucket);
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "kept");
    const before = await bucketDigest(bucket);
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE bucket SET renaming_to = 'elsewhere', rename_attempt = 'test', renaming_since_ms = ? WHERE id = 1",
        Date.now(),
      );
    });
    const message = `Bucket '${bucket}' is being renamed`;
    for (const c of [
      { method: "POST", path: `/b/${bucket}/e?ts=2`, body: "x" },
      { method: "POST", path: `/b/${bucket}/e?ts=3`, body: LARGE },
      { method: "DELETE", path: `/b/${bucket}/e?ts=1` },
      { method: "DELETE", path: `/b/${bucket}/e` },
      { method: "PATCH", path: `/b/${bucket}/e?ts=1`, headers: { "x-reduct-label-x": "y" } },
      { method: "DELETE", path: `/b/${bucket}` },
    ] as const) {
      const response = await api(c.method, c.path, {
        headers: "headers" in c ? c.headers : undefined,
        body: "body" in c ? c.body : undefined,
      });
      distinct.add(caseKey({ ...c, status: 409 }));
      checked++;
      await expectErrorContract(response, { ...c, status: 409, message }, `${c.method} ${c.path} while renaming`);
    }
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      state.storage.sql.exec("UPDATE bucket SET renaming_to = NULL, rename_attempt = NULL, renaming_since_ms = NULL");
    });
    expect(await bucketDigest(bucket)).toEqual(before);
    await expectAlive();
    await expectUnchanged("row 37");
  });
});

// ---- generated cases ----------------------------------------------------------------------------

const BUCKET_NAME = /^[A-Za-z0-9_-]+$/;
const ENTRY_SEGMENT = /^[A-Za-z0-9_-]+$/;

function tryDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The path a request reaches after URL normalisation (`.`/`..` segments, also `%2e`). */
function normalisedPath(path: string): string {
  return new URL(`http://localhost/api/v1${path}`).pathname;
}

function isValidEntryName(name: string): boolean {
  const plain = name === "$meta" ? "" : name.endsWith("/$meta") ? name.slice(0, -6) : name;
  if (name === "$meta") return true;
  return name.length <= 512 && plain.split("/").every((segment) => ENTRY_SEGMENT.test(segment));
}

/**
 * What a POST to `path` is, after URL normalisation: null when it would be a valid request (a
 * bucket create with a valid name, a write with a valid entry name, a batch/query suffix),
 * otherwise the statuses it may get.
 */
function expectedForPost(path: string): { status: number | number[]; message?: string | RegExp } | null {
  const normal = normalisedPath(path.split("?")[0] ?? path);
  const segments = normal.split("/").slice(1); // ["api", "v1", "b", bucket, ...entry]
  if (segments[0] !== "api" || segments[1] !== "v1" || segments[2] !== "b" || segments.length < 4) {
    return { status: [404, 405, 422] };
  }
  const bucket = tryDecode(segments[3] ?? "");
  if (segments.length === 4) {
    if (bucket === "") return { status: 404 };
    if (BUCKET_NAME.test(bucket) && bucket.length <= 256) return null;
    return {
      status: 422,
      message: BUCKET_NAME.test(bucket) ? "Bucket name must be at most 256 characters" : BUCKET_NAME_MESSAGE,
    };
  }
  const rest = segments.slice(4).join("/");
  if (/(^|\/)(batch|q|rename)$/.test(rest) || segments[3] === "") return null;
  if (rest === "") return { status: 404, message: "Not found" }; // `/b/x/` matches no route
  if (!path.includes("?ts=")) return { status: 422, message: "'ts' parameter is required" };
  const entry = tryDecode(rest);
  if (isValidEntryName(entry)) return bucket === VICTIM ? null : { status: [404, 422] };
  return { status: 422, message: /^Entry name |^System entry / };
}

/** A piece of a generated name: raw URL syntax, or text that gets percent-encoded. */
const namePiece: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(".", "..", "/", "%2F", "%2f", "%2E", "%2e%2E", "%", "%zz", "%25", "%00", "$", "-", "_", "//"),
  fc.string({ unit: "grapheme", maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: "grapheme-ascii", maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: fc.constantFrom("a", "Z", "0", "-", "_"), minLength: 1, maxLength: 1000 }),
);
const generatedName = fc.array(namePiece, { minLength: 1, maxLength: 6 }).map((parts) => parts.join(""));

/** ts texts that are not a decimal ≤ 2^53 − 1: signs, fractions, exponents, hex, spaces, overflow. */
const badTimestamp: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      "",
      " ",
      "-1",
      "+1",
      "1.5",
      "1e3",
      "1E3",
      "0x10",
      "0b1",
      "0o7",
      " 1",
      "1 ",
      "\t1",
      "1_000",
      "Infinity",
      "NaN",
    ),
    fc.constantFrom("9007199254740992", "18446744073709551616", "18446744073709551615", "99999999999999999999999"),
    fc.constantFrom("\u0661\u0662", "\uff11", "1\u00a0", "٣"),
    fc
      .tuple(
        fc.constantFrom("", "-", "+", " ", "0x", "."),
        fc.bigInt({ min: 0n, max: 2n ** 70n }),
        fc.constantFrom("", ".0", "e2", " ", "n", "\n", "%00", "&ts=1"),
      )
      .map(([prefix, digits, suffix]) => `${prefix}${digits}${suffix}`),
  )
  .filter((ts) => !(/^\d+$/.test(ts) && BigInt(ts) <= MAX_SAFE));

const labelName = fc.stringMatching(/^[a-z][a-z0-9_-]{0,7}$/);
const labelValue = fc.stringMatching(/^[ -~]{0,16}$/).map((value) => value.trim() || "v");
const validLabels = fc.dictionary(labelName, labelValue, { maxKeys: 5 });

/** One label defect; each yields exactly one 422 message. */
const labelPoison: fc.Arbitrary<{ headers: Record<string, string>; message: string | RegExp }> = fc.oneof(
  fc
    .tuple(
      labelName,
      fc.string({ unit: fc.constantFrom("é", "ü", "\u00ff", "\u4e2d", "\u0080", "\u007f", "\t"), minLength: 1, maxLength: 4 }),
      labelValue,
    )
    .map(([name, bad, good]) => ({
      headers: { [`x-reduct-label-zz${name}`]: `${good}${bad}x` },
      message: `Label values for x-reduct-label-zz${name} must be valid UTF-8 strings`,
    })),
  fc.tuple(labelName, fc.integer({ min: 4097, max: 12_000 })).map(([name, size]) => ({
    headers: { [`x-reduct-label-zz${name}`]: "v".repeat(size) },
    message: `Label value of 'zz${name}' must be at most 4096 bytes`,
  })),
  fc.integer({ min: 129, max: 300 }).map((count) => ({
    headers: Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-reduct-label-m${i}`, "v"])),
    message: "A record can have at most 128 labels",
  })),
  fc.integer({ min: 5, max: 12 }).map((count) => ({
    headers: Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-reduct-label-t${i}`, "w".repeat(4000)])),
    message:
      /^Labels of a record must be at most 12288 bytes in total as response headers \(names, values and 19 bytes per label\)$|^A record can have at most/,
  })),
  fc.integer({ min: 257, max: 600 }).map((length) => ({
    headers: { [`x-reduct-label-${"n".repeat(length)}`]: "v" },
    message: "Label names must be at most 256 bytes",
  })),
  fc.constant({ headers: { "x-reduct-label-": "v" }, message: "Label names must not be empty" }),
);

interface V1Record {
  ts: number;
  size: number;
  contentType: string;
  labels: Record<string, string>;
}

const v1Record = fc.record({
  ts: fc.integer({ min: 10_000, max: 20_000 }),
  size: fc.integer({ min: 0, max: 40 }),
  contentType: fc.constantFrom("", "text/plain", "application/json", "image/png"),
  // Values the v1 grammar carries unquoted (no `,`, `"` or `=`).
  labels: fc.dictionary(labelName, fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), { maxKeys: 4 }),
});

const renderV1 = (r: V1Record) =>
  [`${r.size}`, r.contentType, ...Object.entries(r.labels).map(([k, v]) => `${k}=${v.includes(",") ? `"${v}"` : v}`)].join(",");

type BatchMutation = (
  records: V1Record[],
  headers: Record<string, string>,
) => { headers: Record<string, string>; bodyDelta?: number; message: string | RegExp; status?: number };

const batchMutations: fc.Arbitrary<BatchMutation> = fc.oneof(
  fc.constant<BatchMutation>((records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${records[0]?.size}` },
    message: INVALID_BATCHED,
  })),
  fc
    .constantFrom("abc", "-1", "1.5", "0x10", "", "99999999999999999999", "1e3")
    .map<BatchMutation>((size) => (records, headers) => ({
      headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${size},text/plain` },
      message: "Invalid content length",
    })),
  fc.constantFrom('k="abc', 'k="a,b', 'x=1,k="', 'k="a"b').map<BatchMutation>((labels) => (records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${records[0]?.size},text/plain,${labels}` },
    message: INVALID_BATCHED,
  })),
  fc.integer({ min: 1, max: 3 }).map<BatchMutation>((zeros) => (records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${"0".repeat(zeros)}${records[0]?.ts}`]: `${records[0]?.size},` },
    message: new RegExp(`^Invalid header 'x-reduct-time-0*${records[0]?.ts}': timestamp ${records[0]?.ts} appears twice$`),
  })),
  fc
    .integer({ min: -5, max: 5 })
    .filter((d) => d !== 0)
    .map<BatchMutation>((delta) => (records, headers) => {
      const sum = records.reduce((total, r) => total + r.size, 0);
      const declared = Math.max(0, sum + delta);
      return declared === sum
        ? { headers: { ...headers, "content-length": String(sum + 1) }, bodyDelta: 1, message: SUM_MISMATCH }
        : { headers: { ...headers, "content-length": String(declared) }, bodyDelta: declared - sum, message: SUM_MISMATCH };
    }),
  badTimestamp
    .filter((ts) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]*$/.test(ts))
    .map<BatchMutation>((ts) => (_records, headers) => ({
      headers: { ...headers, [`x-reduct-time-${ts}`]: "0," },
      message: `Invalid header 'x-reduct-time-${ts.toLowerCase()}': must be an unix timestamp in microseconds`,
    })),
  fc.constant<BatchMutation>((records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${records[0]?.size},,@k=v` },
    message: "Label names must not start with '@': reserved for computed labels",
  })),
  fc.constantFrom("text", "a b/c", "text/plain;x").map<BatchMutation>((type) => (records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${records[0]?.size},${type}` },
    message: /^Malformed content-type header: /,
  })),
  fc.constant<BatchMutation>((records, headers) => ({
    headers: { ...headers, [`x-reduct-time-${records[0]?.ts}`]: `${200 * 1024 * 1024},` },
    message: /^Record of \d+ bytes is larger than the limit|^content-length header does not match/,
    status: 413,
  })),
);

const KNOWN_DIRECTIVES: ReadonlySet<string> = new Set(DIRECTIVE_NAMES);

/** A `when` condition from a small valid grammar. */
const { tree: validWhen } = fc.letrec<{ tree: unknown; leaf: unknown }>((tie) => ({
  leaf: fc
    .tuple(
      fc.constantFrom("&a", "&b", "&big", "&missing"),
      fc.constantFrom("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"),
      fc.oneof(
        fc.integer({ min: -1000, max: 1000 }),
        fc.boolean(),
        fc.stringMatching(/^[a-z ]{0,6}$/),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      ),
    )
    .map(([label, op, value]) => ({ [label]: { [op]: value } })),
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("leaf"),
    fc.array(tie("tree"), { maxLength: 3 }).map((items) => ({ $and: items })),
    fc.array(tie("tree"), { maxLength: 3 }).map((items) => ({ $or: items })),
    tie("tree").map((item) => ({ $not: [item] })),
    fc.integer({ min: 1, max: 5 }).map((n) => ({ $each_n: n })),
  ),
}));

const BIG = "__BIG_NUMBER__";

/** One defect that makes any `when` containing it a 422. */
const whenPoison: fc.Arbitrary<{ value: unknown; directive: boolean; big?: string }> = fc.oneof(
  fc
    .stringMatching(/^\$[a-z_]{1,10}$/)
    .filter((op) => findOperator(op) === undefined)
    .map((op) => ({ value: { "&a": { [op]: 1 } }, directive: false })),
  fc
    .stringMatching(/^#[a-z_]{1,12}$/)
    .filter((name) => !KNOWN_DIRECTIVES.has(name))
    .map((name) => ({ value: { [name]: 1 }, directive: true })),
  fc.constantFrom(...DIRECTIVE_NAMES).map((name) => ({ value: { [name]: null }, directive: true })),
  fc.array(fc.integer(), { maxLength: 3 }).map((items) => ({ value: { "&a": { $eq: items } }, directive: false })),
  fc.constant({ value: { "&a": { $eq: null } }, directive: false }),
  fc.constant({ value: { "&a": { $eq: 1, $ne: 2 } }, directive: false }),
  fc.stringMatching(/^[a-z]{1,6}$/).map((op) => ({ value: { "&a": { [op]: 1 } }, directive: false })),
  fc
    .constantFrom("9007199254740993", "18446744073709551616", "-9223372036854775809", "1e400", "123456789012345678901234567890")
    .map((big) => ({ value: { "&a": { $gt: BIG } }, directive: false, big })),
  fc.integer({ min: 33, max: 3000 }).map((depth) => {
    let value: unknown = { "&a": { $eq: 1 } };
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { $and: [value] } : { $not: [value] };
    return { value, directive: false };
  }),
  fc.integer({ min: 1001, max: 3000 }).map((count) => ({
    value: { $or: Array.from({ length: count }, (_, i) => i) },
    directive: false,
  })),
);

function whenJson(base: unknown, poison: { value: unknown; directive: boolean; big?: string }, wrap: boolean): string {
  let when: unknown;
  if (poison.directive || !wrap) {
    when = { ...(typeof base === "object" && base !== null && !Array.isArray(base) ? base : {}), ...(poison.value as object) };
  } else {
    when = { $and: [base, poison.value] };
  }
  const json = JSON.stringify(when);
  return poison.big ? json.replace(`"${BIG}"`, poison.big) : json;
}

const badQueryParam = fc.constantFrom("x", "-1", "1.5", "1e3", "", " 1", "18446744073709551616", "9007199254740992", "0x1");
const badBool = fc.constantFrom("maybe", "1", "0", "TRUE", "True", "", "yes", "false ");

/** JSON values that are wrong for a u64 field. */
const badU64: fc.Arbitrary<string> = fc.constantFrom(
  '"100"',
  "-1",
  "1.5",
  "9007199254740993",
  "18446744073709551616",
  "1e400",
  "true",
  "{}",
  "[1]",
  '""',
);
const badBoolJson = fc.constantFrom('"true"', "1", "0", '"false"', "[]", "{}");

/** Builds a JSON object text from fields whose values are given as JSON texts. */
const objectText = (fields: Record<string, string>) =>
  `{${Object.entries(fields)
    .map(([key, value]) => `${JSON.stringify(key)}: ${value}`)
    .join(", ")}}`;

/** Cuts a JSON text somewhere inside (never empty, never the whole). */
const truncated = (json: string) => fc.integer({ min: 1, max: Math.max(1, json.length - 1) }).map((cut) => json.slice(0, cut));

describe("generated bad inputs (fast-check, fixed seed)", () => {
  it("names: bucket creates with unicode, '.', '/', '%2F', '..', empty segments, 0-1000 chars", async () => {
    await property(
      "bucket names",
      generatedName
        .map((name) => ({ path: `/b/${name}`, expected: expectedForPost(`/b/${name}`) }))
        .filter(({ expected }) => expected !== null)
        .map(({ path, expected }): Case => ({ method: "POST", path, ...(expected ?? { status: 422 }) })),
    );
  });

  it("names: entry writes with unicode, '.', '/', '%2F', '..', empty segments, 0-1000 chars", async () => {
    await property(
      "entry names",
      generatedName
        .map((name) => ({ path: `/b/${VICTIM}/${name}?ts=500`, expected: expectedForPost(`/b/${VICTIM}/${name}?ts=500`) }))
        .filter(({ expected }) => expected !== null)
        .map(({ path, expected }): Case => ({ method: "POST", path, body: "x", ...(expected ?? { status: 422 }) })),
    );
  });

  it("timestamps: negative, float, exponent, hex, whitespace, 2^53, 2^64, empty", async () => {
    await property(
      "timestamps",
      fc.tuple(badTimestamp, fc.constantFrom("POST", "GET", "HEAD", "PATCH", "DELETE")).map(([ts, method]): Case => {
        const path = `/b/${VICTIM}/e?ts=${encodeURIComponent(ts)}`;
        return {
          method,
          path,
          body: method === "POST" ? "x" : undefined,
          headers: method === "PATCH" ? { "x-reduct-label-a": "changed" } : undefined,
          status: 422,
          message: TS_MESSAGE,
        };
      }),
    );
  });

  it("label header maps: non-ASCII bytes, huge values, many labels", async () => {
    await property(
      "labels",
      fc
        .tuple(validLabels, labelPoison, fc.constantFrom("POST", "PATCH"), fc.boolean())
        .map(([labels, poison, method, large]): Case => {
          const headers = Object.fromEntries(Object.entries(labels).map(([k, v]) => [`x-reduct-label-${k}`, v]));
          return {
            method,
            path: method === "POST" ? `/b/${VICTIM}/e?ts=501` : `/b/${VICTIM}/e?ts=${large ? 100 : 1}`,
            headers: { ...headers, ...poison.headers },
            body: method === "POST" ? (large ? LARGE : "x") : undefined,
            status: 422,
            message: poison.message,
          };
        }),
    );
  });

  it("v1 batch headers: dropped comma, bad size, unterminated quote, duplicate ts, sum mismatch", async () => {
    await property(
      "batch headers",
      fc
        .tuple(fc.uniqueArray(v1Record, { minLength: 1, maxLength: 5, selector: (r) => r.ts }), batchMutations)
        .map(([records, mutate]): Case => {
          const headers = Object.fromEntries(records.map((r) => [`x-reduct-time-${r.ts}`, renderV1(r)]));
          const mutated = mutate(records, headers);
          const sum = records.reduce((total, r) => total + r.size, 0);
          const body = bytesOf(Math.max(0, sum + (mutated.bodyDelta ?? 0)), sum);
          return {
            method: "POST",
            path: `/b/${VICTIM}/e/batch`,
            headers: mutated.headers,
            body,
            status: mutated.status ? [mutated.status, 422] : 422,
            message: mutated.message,
          };
        }),
    );
  });

  it("`when` mutations: unknown $op, arrays, nulls, deep nesting, big integers", async () => {
    await property(
      "when",
      fc
        .tuple(validWhen, whenPoison, fc.boolean(), fc.constantFrom("QUERY", "REMOVE"), fc.boolean())
        .map(([base, poison, wrap, queryType, io]): Case => {
          const when = whenJson(base, poison, wrap);
          return io
            ? {
                method: "POST",
                path: `/io/${VICTIM}/q`,
                body: `{"query_type": "${queryType}", "entries": ["e", "a/b"], "when": ${when}}`,
                status: 422,
              }
            : { method: "POST", path: `/b/${VICTIM}/e/q`, body: `{"query_type": "${queryType}", "when": ${when}}`, status: 422 };
        }),
    );
  });

  it("query parameters: q, ttl, continuous, start, stop", async () => {
    const legacy = fc
      .record(
        {
          start: fc.option(badQueryParam, { nil: undefined }),
          stop: fc.option(badQueryParam, { nil: undefined }),
          ttl: fc.option(badQueryParam, { nil: undefined }),
          continuous: fc.option(badBool, { nil: undefined }),
        },
        { requiredKeys: [] },
      )
      .filter((params) => Object.values(params).some((value) => value !== undefined))
      .chain((params) =>
        fc.constantFrom("GET", "DELETE").map((method): Case => {
          const query = Object.entries(params)
            .filter(([, value]) => value !== undefined)
            .map(([key, value]) => `${key}=${encodeURIComponent(value as string)}`)
            .join("&");
          return { method, path: `/b/${VICTIM}/e/q?${query}`, status: 422 };
        }),
      );
    const startAfterStop = fc
      .tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.constantFrom("GET", "DELETE"))
      .filter(([a, b]) => a !== b)
      .map(
        ([a, b, method]): Case => ({
          method,
          path: `/b/${VICTIM}/e/q?start=${Math.max(a, b)}&stop=${Math.min(a, b)}`,
          status: 422,
          message: "Start time must be before stop time",
        }),
      );
    const queryIds = fc
      .tuple(
        fc.oneof(badQueryParam, fc.bigInt({ min: 10n ** 9n, max: MAX_SAFE }).map(String)),
        fc.constantFrom("single", "batch", "io"),
      )
      .map(([q, where]): Case => {
        // Header values are trimmed by the runtime, query parameters are not.
        const sent = where === "io" ? q.trim() : q;
        const numeric = /^\d+$/.test(sent) && BigInt(sent) <= MAX_SAFE;
        if (where === "io") {
          return {
            method: "GET",
            path: `/io/${VICTIM}/read`,
            headers: { "x-reduct-query-id": q },
            status: numeric ? 404 : [422],
          };
        }
        const path =
          where === "single" ? `/b/${VICTIM}/e?q=${encodeURIComponent(q)}` : `/b/${VICTIM}/e/batch?q=${encodeURIComponent(q)}`;
        return {
          method: "GET",
          path,
          status: numeric ? 404 : 422,
          message: numeric ? /^Query \d+ not found/ : "'query' must be a number",
        };
      });
    await property("query parameters", fc.oneof(legacy, startAfterStop, queryIds));
  });

  it("JSON bodies: bucket settings, tokens and queries", async () => {
    let fresh = 0;
    const settingsField = fc.constantFrom("max_block_size", "max_block_records", "quota_size");
    const badSettings = fc.oneof(
      fc.tuple(settingsField, badU64).map(([field, value]) => objectText({ quota_type: '"NONE"', [field]: value })),
      fc.constantFrom('"UNKNOWN"', '"fifo"', '""', "1", "true", "[]").map((type) => objectText({ quota_type: type })),
      fc.constantFrom("[]", "1", '"x"', "true", "null", "[{}]"),
      truncated('{"max_block_size": 1000, "quota_type": "FIFO", "quota_size": 5000}'),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 30 }).filter((t) => {
        try {
          const parsed = JSON.parse(t);
          return parsed === null || typeof parsed !== "object" || Array.isArray(parsed);
        } catch {
          return t.trim() !== "";
        }
      }),
    );
    const settingsCase = fc.tuple(badSettings, fc.constantFrom("create", "update", "update-hard")).map(([body, target]): Case => {
      fresh++;
      if (target === "create") return { method: "POST", path: `/b/${NEVER}`, body, status: 422, message: /^Invalid JSON: / };
      return { method: "PUT", path: `/b/${target === "update" ? VICTIM : HARD}`, body, status: 422, message: /^Invalid JSON: / };
    });

    const validTokenFields: Record<string, string> = {
      permissions: JSON.stringify({ full_access: false, read: [VICTIM], write: [] }),
      ttl: "3600",
      expires_at: '"2099-01-01T00:00:00Z"',
      ip_allowlist: '["127.0.0.1"]',
    };
    const tokenMutation = fc.oneof(
      fc.constantFrom(
        ["ttl", "0"],
        ["ttl", "-1"],
        ["ttl", "1.5"],
        ["ttl", '"60"'],
        ["expires_at", '"yesterday"'],
        ["expires_at", '"2001-01-01T00:00:00Z"'],
        ["expires_at", "5"],
        ["ip_allowlist", '["300.1.1.1"]'],
        ["ip_allowlist", '"127.0.0.1"'],
        ["ip_allowlist", '["x/33"]'],
        ["permissions", '{"full_access": "yes"}'],
        ["permissions", '{"read": "b"}'],
        ["permissions", '{"read": ["a/b"]}'],
        ["permissions", '{"write": ["a b"]}'],
        ["permissions", '{"write": [""]}'],
        ["permissions", '{"fullaccess": true}'],
        ["permissions", "null"],
        ["permissions", "[]"],
        ["fullaccess", "true"],
      ),
    );
    const tokenCase = fc
      .tuple(fc.subarray(["ttl", "expires_at", "ip_allowlist"]), tokenMutation, fc.boolean())
      .map(([keep, [field, value], cut]): Case => {
        fresh++;
        const fields: Record<string, string> = { permissions: validTokenFields.permissions ?? "{}" };
        for (const key of keep) fields[key] = validTokenFields[key] ?? "null";
        fields[field] = value;
        const body = objectText(fields);
        return {
          method: "POST",
          path: `/tokens/${NEVER_TOKEN}`,
          body: cut ? body.slice(0, Math.max(1, body.length - 3)) : body,
          status: 422,
        };
      });

    const queryField = fc.oneof(
      fc.tuple(fc.constantFrom("start", "stop", "ttl"), badU64),
      fc.tuple(fc.constantFrom("only_metadata", "continuous", "strict"), badBoolJson),
      fc.tuple(fc.constant("query_type"), fc.constantFrom('"query"', '"DELETE"', "1", "null", '""')),
      fc.tuple(fc.constant("ext"), fc.constantFrom("{}", '{"x": {}}', "1", '"x"', "false", "[]")),
      fc.tuple(fc.constant("entries"), fc.constantFrom('"e"', "[1]", "{}", "[null]")),
    );
    const queryCase = fc
      .tuple(fc.constantFrom('"QUERY"', '"REMOVE"'), queryField, fc.boolean())
      .map(([type, [field, value], io]): Case => {
        const fields: Record<string, string> = { query_type: type, start: "1", stop: "200", ttl: "10" };
        if (io) fields.entries = '["e"]';
        fields[field] = value;
        // `entries` is only read by /io; on the entry endpoint it is still type-checked.
        return { method: "POST", path: io ? `/io/${VICTIM}/q` : `/b/${VICTIM}/e/q`, body: objectText(fields), status: 422 };
      });

    await property("json bodies", fc.oneof(settingsCase, tokenCase, queryCase), RUNS * 2);
    expect(fresh).toBeGreaterThan(0);
  }, 120_000); // CPU-bound: many requests through the Worker
});

describe("the count", () => {
  it(`ran at least ${MIN_DISTINCT_CASES} distinct bad-input cases`, () => {
    console.log(`bad-input suite: ${distinct.size} distinct cases (${checked} checked)`);
    expect(distinct.size).toBeGreaterThanOrEqual(MIN_DISTINCT_CASES);
  });
});
