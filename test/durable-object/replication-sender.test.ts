/**
 * The replication sender against a real target: a second bucket of the same test Worker, reached
 * through an injected fetch. Outcomes of an attempt are table-driven; records must arrive once, in
 * order, with their bytes, content type and labels, and a failed attempt must keep them.
 */
import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import {
  CHECK_TIMEOUT_MS,
  ReplicationSend,
  type ReplicationSendDeps,
  SEND_BACKOFF_MAX_MS,
  SEND_BACKOFF_MIN_MS,
  SEND_TIMEOUT_MS,
} from "../../src/bucket/duties/replication-send";
import { destinationEntry, type OutboundFetch, timeHeader } from "../../src/bucket/duties/replication-wire";
import type { ObjectParts } from "../../src/bucket/object-parts";
import worker from "../../src/index";
import type { ReplicationSettings, ReplicationStatus } from "../../src/model/replications";
import { api, TOKEN, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

/** Into the same Worker, as another instance would receive it. */
const intoWorker: OutboundFetch = async (request) =>
  worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, env, createExecutionContext());

const partsOf = (instance: BucketObject) => (instance as unknown as { parts: ObjectParts }).parts;

async function setFetch(bucket: string, fetch: OutboundFetch): Promise<void> {
  await runInDurableObject(stubOf(bucket), (instance) => {
    partsOf(instance).outbound.fetch = fetch;
  });
}

/** Runs the sender now, as the alarm does, with the backoff of an earlier failure (and every entry's hold) cleared. */
async function sendNow(bucket: string): Promise<void> {
  await runInDurableObject(stubOf(bucket), async (instance, state) => {
    state.storage.sql.exec("UPDATE replications SET backoff_until_ms = 0");
    partsOf(instance).replicationSend.endHolds();
    await partsOf(instance).replicationSend.run(Date.now() + 10_000);
  });
}

/** When the sender wants its next alarm (null: nothing to send). */
async function dueAt(bucket: string): Promise<number | null> {
  return runInDurableObject(stubOf(bucket), (instance) => partsOf(instance).replicationSend.nextDueAt());
}

async function statusOf(bucket: string, name = "r"): Promise<ReplicationStatus> {
  const [status] = await stubOf(bucket).replicationStatus([name]);
  if (!status) throw new Error("no status");
  return status;
}

/** A source bucket with an enabled replication into `dst` (created unless told otherwise). */
async function pair(
  options: { createTarget?: boolean; settings?: Partial<ReplicationSettings>; fetch?: OutboundFetch; name?: string } = {},
) {
  const src = uniqueName("rsrc");
  const dst = options.settings?.dst_bucket ?? uniqueName("rdst");
  await createBucket(src);
  if (options.createTarget !== false) await createBucket(dst);
  // Injected before the first write: the alarm may send as soon as there is something to send.
  await setFetch(src, options.fetch ?? intoWorker);
  const settings: ReplicationSettings = {
    src_bucket: src,
    dst_bucket: dst,
    dst_host: "http://localhost",
    dst_token: TOKEN,
    entries: [],
    dst_prefix: "",
    mode: "enabled",
    compression: "none",
    ...options.settings,
  };
  expect((await stubOf(src).setReplications([{ name: options.name ?? "r", settings }])).ok).toBe(true);
  return { src, dst };
}

async function readAt(bucket: string, entry: string, ts: number) {
  const response = await api("GET", `/b/${bucket}/${entry}?ts=${ts}`);
  const body = new Uint8Array(await response.arrayBuffer());
  const labels: Record<string, string> = {};
  for (const [name, value] of response.headers) if (name.startsWith("x-reduct-label-")) labels[name.slice(15)] = value;
  return { status: response.status, body, labels, contentType: response.headers.get("content-type") };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

interface HeaderCase {
  size: number | null;
  type: string;
  labels: Record<string, string>;
  want: string;
}

describe("headers as ReductStore's sender builds them", () => {
  it.each<HeaderCase>([
    {
      size: 10,
      type: "text/plain",
      labels: { label1: "value1", with_comma: "[x,y]" },
      want: '10,text/plain,label1=value1,with_comma="[x,y]"',
    },
    { size: 10, type: "image/jpg", labels: { label2: "value2" }, want: "10,image/jpg,label2=value2" },
    { size: null, type: "", labels: { b: "2", a: "1" }, want: "0,,a=1,b=2" },
    { size: 3, type: "application/octet-stream", labels: {}, want: "3,application/octet-stream" },
  ])("$want", ({ size, type, labels, want }) => {
    expect(timeHeader(size, type, labels)).toBe(want);
  });

  it.each([
    ["", "camera/front", "camera/front"],
    ["robot-1", "camera/front", "robot-1/camera/front"],
    ["/robot-1/", "/camera/front", "robot-1/camera/front"],
  ])("prefix %j + entry %j → %j", (prefix, entry, want) => {
    expect(destinationEntry(prefix, entry)).toBe(want);
  });
});

describe("delivery", () => {
  it("writes arrive once, in order, with bytes, content type and labels; the log empties", async () => {
    const { src, dst } = await pair();
    await putRecord(src, "a", 1, "one", { contentType: "text/plain", labels: { x: "1", list: "a,b" } });
    await putRecord(src, "a", 2, "two");
    await putRecord(src, "b", 3, bytesOf(200 * 1024)); // a large record: its own R2 object
    await sendNow(src);
    const first = await readAt(dst, "a", 1);
    expect({ ...first, body: text(first.body) }).toEqual({
      status: 200,
      body: "one",
      labels: { x: "1", list: "a,b" },
      contentType: "text/plain",
    });
    expect(text((await readAt(dst, "a", 2)).body)).toBe("two");
    expect((await readAt(dst, "b", 3)).body).toEqual(bytesOf(200 * 1024));
    const status = await statusOf(src);
    expect(status).toMatchObject({ pending_records: 0, is_active: true, diagnostics: { hourly: { ok: 3, errored: 0 } } });
  });

  it("records written out of timestamp order keep their own bytes (batch v1 bodies go by timestamp)", async () => {
    const { src, dst } = await pair();
    await putRecord(src, "a", 2, "second-record", { labels: { n: "two" } });
    await putRecord(src, "a", 1, "first", { labels: { n: "one" } });
    await sendNow(src);
    const [one, two] = [await readAt(dst, "a", 1), await readAt(dst, "a", 2)];
    expect([text(one.body), one.labels, text(two.body), two.labels]).toEqual([
      "first",
      { n: "one" },
      "second-record",
      { n: "two" },
    ]);
  });

  it("an attachment ($meta entry) arrives with its key", async () => {
    const { src, dst } = await pair();
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "a/$meta", 5, '{"unit":"m"}', { contentType: "application/json", labels: { key: "schema" } });
    await sendNow(src);
    const meta = await readAt(dst, "a/$meta", 5);
    expect({ status: meta.status, body: text(meta.body), labels: meta.labels }).toEqual({
      status: 200,
      body: '{"unit":"m"}',
      labels: { key: "schema" },
    });
    expect((await statusOf(src)).pending_records).toBe(0);
  });

  it("records written out of timestamp order arrive with their own bytes (a batch body goes in timestamp order)", async () => {
    const { src, dst } = await pair();
    // Logged 30, 10, 20: a v1 batch body is read in the order of its timestamps.
    await putRecord(src, "a", 30, "thirty, the longest of them", { labels: { n: "30" } });
    await putRecord(src, "a", 10, "ten", { labels: { n: "10" } });
    await putRecord(src, "a", 20, "twenty!", { labels: { n: "20" } });
    await sendNow(src);
    const got = await Promise.all([10, 20, 30].map(async (ts) => readAt(dst, "a", ts)));
    expect(got.map((record) => [text(record.body), record.labels.n])).toEqual([
      ["ten", "10"],
      ["twenty!", "20"],
      ["thirty, the longest of them", "30"],
    ]);
    expect((await statusOf(src)).pending_records).toBe(0);
  });

  it("a missing target bucket is created first (HEAD 404 → POST)", async () => {
    const { src, dst } = await pair({ createTarget: false });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect((await api("HEAD", `/b/${dst}`)).status).toBe(200);
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
  });

  it("dst_prefix goes before the entry", async () => {
    const { src, dst } = await pair({ settings: { dst_prefix: "robot-1" } });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect(text((await readAt(dst, "robot-1/a", 1)).body)).toBe("one");
  });

  it("label updates are sent as a PATCH batch; one the target lacks is written instead", async () => {
    const { src, dst } = await pair();
    await putRecord(src, "a", 1, "one", { labels: { x: "1" } });
    await sendNow(src);
    expect((await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-y": "2" } })).status).toBe(200);
    await sendNow(src);
    expect((await readAt(dst, "a", 1)).labels).toEqual({ x: "1", y: "2" });
    // Removed at the target meanwhile: the update brings the whole record back.
    expect((await api("DELETE", `/b/${dst}/a?ts=1`)).status).toBe(200);
    expect((await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-z": "3" } })).status).toBe(200);
    await sendNow(src);
    const back = await readAt(dst, "a", 1);
    expect({ status: back.status, body: text(back.body), labels: back.labels }).toEqual({
      status: 200,
      body: "one",
      labels: { x: "1", y: "2", z: "3" },
    });
    expect((await statusOf(src)).pending_records).toBe(0);
  });

  it("a record removed at the source before it was sent is dropped and counted (404)", async () => {
    let reachable = false;
    const batches: string[] = [];
    const { src } = await pair({
      fetch: async (request) => {
        if (!reachable) throw new Error("target unreachable (injected)");
        if (new URL(request.url).pathname.endsWith("/batch")) batches.push(request.url);
        return intoWorker(request);
      },
    });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
    expect((await api("DELETE", `/b/${src}/a?ts=1`)).status).toBe(200);
    reachable = true;
    await sendNow(src);
    const status = await statusOf(src);
    expect(status.pending_records).toBe(0);
    expect(status.diagnostics.hourly.errors["404"]?.count).toBe(1);
    expect(batches).toEqual([]); // nothing to send for a record that is gone
  });
});

/** Answers batch requests with `answer`; everything else (the target check) goes to the Worker. */
function batchesAnswer(answer: (request: Request) => Promise<Response>): OutboundFetch {
  return (request) => (new URL(request.url).pathname.endsWith("/batch") ? answer(request) : intoWorker(request));
}

describe("outcomes of an attempt", () => {
  const cases: {
    name: string;
    answer: (request: Request) => Promise<Response>;
    pending: number;
    active: boolean;
    ok: number;
    errors: Record<string, number>;
    backoff: boolean;
  }[] = [
    {
      name: "200",
      answer: async () => new Response(null, { status: 200 }),
      pending: 0,
      active: true,
      ok: 2,
      errors: {},
      backoff: false,
    },
    {
      name: "per-record 409: the target has it (delivered)",
      answer: async (request) => {
        await (await intoWorker(request)).body?.cancel();
        return new Response(null, { headers: { "x-reduct-error-1": "409,A record with timestamp 1 already exists" } });
      },
      pending: 0,
      active: true,
      ok: 2,
      errors: {},
      backoff: false,
    },
    {
      name: "per-record 409 for a record the target cannot read (an upload its crash cut): kept, backoff",
      answer: async () => new Response(null, { headers: { "x-reduct-error-1": "409,A record with timestamp 1 already exists" } }),
      pending: 2,
      active: true,
      ok: 0,
      errors: { "404": 1 },
      backoff: true,
    },
    {
      name: "per-record 425 (still being written): kept, backoff",
      answer: async () =>
        new Response(null, { headers: { "x-reduct-error-1": "425,Record with timestamp 1 is still being written" } }),
      pending: 2,
      active: true,
      ok: 0,
      errors: { "425": 1 },
      backoff: true,
    },
    {
      name: "per-record 422: errored and dropped",
      answer: async () => new Response(null, { headers: { "x-reduct-error-2": "422,bad label" } }),
      pending: 0,
      active: true,
      ok: 1,
      errors: { "422": 1 },
      backoff: false,
    },
    {
      name: "429: kept, backoff",
      answer: async () => new Response(null, { status: 429, headers: { "x-reduct-error": "slow down" } }),
      pending: 2,
      active: true,
      ok: 0,
      errors: { "429": 1 },
      backoff: true,
    },
    {
      name: "503: kept, backoff, not active",
      answer: async () => new Response(null, { status: 503 }),
      pending: 2,
      active: false,
      ok: 0,
      errors: { "503": 1 },
      backoff: true,
    },
    {
      name: "401: kept (an auth error must not drop records), backoff",
      answer: async () => new Response(null, { status: 401, headers: { "x-reduct-error": "Invalid token" } }),
      pending: 2,
      active: true,
      ok: 0,
      errors: { "401": 1 },
      backoff: true,
    },
    {
      name: "network error: kept, backoff, not active",
      answer: async () => {
        throw new Error("connection refused (injected)");
      },
      pending: 2,
      active: false,
      ok: 0,
      errors: { "0": 1 },
      backoff: true,
    },
  ];
  it.each(cases)("$name", async ({ answer, pending, active, ok, errors, backoff }) => {
    const { src } = await pair({ fetch: batchesAnswer(answer) });
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "a", 2, "two");
    const before = Date.now();
    await sendNow(src);
    const status = await statusOf(src);
    const counted = Object.fromEntries(Object.entries(status.diagnostics.hourly.errors).map(([code, e]) => [code, e.count]));
    expect({
      pending: status.pending_records,
      active: status.is_active,
      ok: status.diagnostics.hourly.ok,
      errors: counted,
    }).toEqual({
      pending,
      active,
      ok,
      errors,
    });
    // The replication's backoff after a whole-request failure, the entry's hold after a per-record one.
    const due = await dueAt(src);
    if (backoff) expect(due).toBeGreaterThanOrEqual(before + SEND_BACKOFF_MIN_MS);
    else expect(due).toBeNull();
  });

  it("after a 503 the same records go again, in order, and arrive once", async () => {
    let failing = true;
    const seen: string[] = [];
    const { src, dst } = await pair({
      fetch: batchesAnswer(async (request) => {
        seen.push([...request.headers.keys()].filter((name) => name.startsWith("x-reduct-time-")).join(" "));
        if (failing) return new Response(null, { status: 503 });
        return intoWorker(request);
      }),
    });
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "a", 2, "two");
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(2);
    failing = false;
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(0);
    expect(seen).toEqual(["x-reduct-time-1 x-reduct-time-2", "x-reduct-time-1 x-reduct-time-2"]);
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
    expect(text((await readAt(dst, "a", 2)).body)).toBe("two");
  });

  it("a lost answer: the retry meets 409s and counts them delivered", async () => {
    let lose = true;
    const { src, dst } = await pair({
      fetch: batchesAnswer(async (request) => {
        const answered = await intoWorker(request);
        if (!lose) return answered;
        lose = false;
        await answered.body?.cancel();
        throw new Error("connection reset after the target stored the batch (injected)");
      }),
    });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
    await sendNow(src);
    const status = await statusOf(src);
    expect({ pending: status.pending_records, ok: status.diagnostics.hourly.ok }).toEqual({ pending: 0, ok: 1 });
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
  });

  it("losing and regaining the target writes one $system event each (replications/<instance>/<name>)", async () => {
    let failing = true;
    const name = uniqueName("events");
    const { src } = await pair({
      name,
      fetch: batchesAnswer(async (request) => (failing ? new Response(null, { status: 503 }) : intoWorker(request))),
    });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    await sendNow(src); // a second failure in a row writes nothing more
    failing = false;
    await sendNow(src);
    await putRecord(src, "a", 2, "two");
    await sendNow(src); // a success after a success neither
    const response = await api("POST", `/b/$system/replications/reduct-edge-test/${name}/q`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query_type: "QUERY" }),
    });
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: number };
    const batch = await api("GET", `/b/$system/replications/reduct-edge-test/${name}/batch?q=${id}`);
    const statuses = [...batch.headers]
      .filter(([header]) => header.startsWith("x-reduct-time-"))
      .sort(([a], [b]) => Number(a.slice(14)) - Number(b.slice(14)))
      .map(([, value]) => (value.includes("status=error") ? "error" : value.includes("status=ok") ? "ok" : value));
    await batch.arrayBuffer();
    expect(statuses).toEqual(["error", "ok"]);
  });

  it("more records than one request takes go in slices of RS_IO_BATCH_MAX_RECORDS (85), in order", async () => {
    const firsts: number[][] = [];
    const { src, dst } = await pair({
      fetch: batchesAnswer(async (request) => {
        const times = [...request.headers.keys()]
          .filter((name) => name.startsWith("x-reduct-time-"))
          .map((name) => Number(name.slice(14)))
          .sort((a, b) => a - b);
        firsts.push([times[0] ?? -1, times.length]);
        return intoWorker(request);
      }),
    });
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    for (let ts = 1; ts <= 180; ts++) headers[`x-reduct-time-${ts}`] = "1,text/plain";
    const written = await api("POST", `/b/${src}/a/batch`, { headers, body: "x".repeat(180) });
    expect(written.status).toBe(200);
    await sendNow(src);
    expect(firsts).toEqual([
      [1, 85],
      [86, 85],
      [171, 10],
    ]);
    expect((await statusOf(src)).pending_records).toBe(0);
    const info = (await (await api("GET", `/b/${dst}`)).json()) as { entries: { name: string; record_count: number }[] };
    expect(info.entries.find((entry) => entry.name === "a")?.record_count).toBe(180);
  });

  it("a target that does not answer does not hold up writes to the source", async () => {
    let release: (response: Response) => void = () => {};
    const hanging = new Promise<Response>((resolve) => {
      release = resolve;
    });
    const { src } = await pair({ fetch: batchesAnswer(() => hanging) });
    await putRecord(src, "a", 1, "one");
    let sending: Promise<void> = Promise.resolve();
    await runInDurableObject(stubOf(src), (instance) => {
      sending = partsOf(instance).replicationSend.run(Date.now() + 10_000);
    });
    const started = Date.now();
    await putRecord(src, "a", 2, "two");
    expect((await api("GET", `/b/${src}/a?ts=1`)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    release(new Response(null, { status: 200 }));
    await sending;
    // Sent while the request hung: record 1 is acknowledged, record 2 waits for the next slice.
    expect((await statusOf(src)).pending_records).toBeLessThanOrEqual(1);
  });

  it("the object's own fetch: a closed port is a network error (status 0), records kept", async () => {
    const src = uniqueName("rsrc-real");
    await createBucket(src);
    const settings: ReplicationSettings = {
      src_bucket: src,
      dst_bucket: "b",
      dst_host: "http://127.0.0.1:9/",
      entries: [],
      dst_prefix: "",
      mode: "enabled",
      compression: "none",
    };
    expect((await stubOf(src).setReplications([{ name: "r", settings }])).ok).toBe(true);
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    const status = await statusOf(src);
    expect({
      pending: status.pending_records,
      active: status.is_active,
      codes: Object.keys(status.diagnostics.hourly.errors),
    }).toEqual({
      pending: 1,
      active: false,
      codes: ["0"],
    });
  });

  it("paused: logs and does not send", async () => {
    let calls = 0;
    const { src } = await pair({
      settings: { mode: "paused" },
      fetch: (request) => {
        calls++;
        return intoWorker(request);
      },
    });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect(calls).toBe(0);
    expect((await statusOf(src)).pending_records).toBe(1);
  });
});

describe("the target bucket deleted after the first contact", () => {
  // The target answers a batch into a missing bucket 200 with a per-record 404 (as ReductStore
  // does): the records must be kept and the bucket created again, not dropped as errored.
  it.each(["write", "label update"])("a %s is kept and arrives once the bucket is back", async (kind) => {
    const { src, dst } = await pair();
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect((await readAt(dst, "a", 1)).status).toBe(200);
    expect((await api("DELETE", `/b/${dst}`)).status).toBe(200);
    if (kind === "write") await putRecord(src, "a", 2, "two");
    else expect((await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-y": "2" } })).status).toBe(200);
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
    await sendNow(src);
    const read = kind === "write" ? await readAt(dst, "a", 2) : await readAt(dst, "a", 1);
    expect([read.status, text(read.body), kind === "write" ? {} : read.labels]).toEqual(
      kind === "write" ? [200, "two", {}] : [200, "one", { y: "2" }],
    );
    expect((await statusOf(src)).pending_records).toBe(0);
  });
});

describe("an entry renamed at the source before its records were sent", () => {
  it("sends them under the new name, descendants too, none lost", async () => {
    const { src, dst } = await pair({ settings: { mode: "paused" } });
    await putRecord(src, "cam", 1, "one");
    await putRecord(src, "cam/front", 2, "two");
    await putRecord(src, "camera", 3, "three"); // shares the prefix, not the entry
    const renamed = await api("PUT", `/b/${src}/cam/rename`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ new_name: "robot/cam" }),
    });
    expect(renamed.status).toBe(200);
    const settings: ReplicationSettings = {
      src_bucket: src,
      dst_bucket: dst,
      dst_host: "http://localhost",
      dst_token: TOKEN,
      entries: [],
      dst_prefix: "",
      mode: "enabled",
      compression: "none",
    };
    expect((await stubOf(src).setReplications([{ name: "r", settings }])).ok).toBe(true);
    await sendNow(src);
    await sendNow(src);
    const arrived = await Promise.all(
      [
        ["robot/cam", 1],
        ["robot/cam/front", 2],
        ["camera", 3],
      ].map(async ([entry, ts]) => {
        const read = await readAt(dst, String(entry), Number(ts));
        return [read.status, text(read.body)];
      }),
    );
    expect(arrived).toEqual([
      [200, "one"],
      [200, "two"],
      [200, "three"],
    ]);
    expect((await readAt(dst, "cam", 1)).status).toBe(404);
    expect(await statusOf(src)).toMatchObject({ pending_records: 0, diagnostics: { hourly: { errored: 0 } } });
  });
});

describe("a batch the target refuses as a whole", () => {
  /** Passes everything to the Worker but answers write batches with `status`. */
  const refusingBatches =
    (status: number): OutboundFetch =>
    async (request) => {
      if (request.method === "POST" && new URL(request.url).pathname.endsWith("/batch")) {
        await request.body?.cancel();
        return new Response(JSON.stringify({ detail: "refused" }), {
          status,
          headers: { "x-reduct-error": `refused ${status}` },
        });
      }
      return intoWorker(request);
    };

  it.each([
    [400, true],
    [413, true],
    [422, true],
    [401, false],
    [403, false],
    [429, false],
    [503, false],
  ])("answered %i on every attempt: dropped after the backoff reached its maximum: %s", async (status, dropped) => {
    const { src, dst } = await pair({ fetch: refusingBatches(status) });
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "a", 2, "two");
    // 1 s doubling to 60 s: the eighth attempt is made at the maximum.
    for (let attempt = 0; attempt < 7; attempt++) await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(2);
    for (let attempt = 0; attempt < 3; attempt++) await sendNow(src);
    const status_ = await statusOf(src);
    expect(status_.pending_records).toBe(dropped ? 0 : 2);
    if (dropped) expect(status_.diagnostics.hourly.errors[String(status)]?.count).toBeGreaterThanOrEqual(2);
    expect((await readAt(dst, "a", 1)).status).toBe(404);
  });
});

describe("a refusal after an outage", () => {
  it("is retried: the two minutes of retries count refusals, not the backoff an outage left", async () => {
    let down = true;
    const { src } = await pair({
      fetch: async (request) => {
        if (down) throw new Error("connection refused (injected)");
        if (!new URL(request.url).pathname.endsWith("/batch")) return intoWorker(request);
        await request.body?.cancel();
        return new Response(null, { status: 400, headers: { "x-reduct-error": "refused while starting" } });
      },
    });
    await putRecord(src, "a", 1, "one");
    // Unreachable long enough for the backoff to reach its maximum.
    for (let attempt = 0; attempt < 8; attempt++) await sendNow(src);
    down = false;
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
  });
});

describe("compression", () => {
  it.each([
    { compression: "gzip" as const, api: null, coding: "gzip" },
    { compression: "zstd" as const, api: null, coding: "zstd" },
    { compression: "gzip" as const, api: "1.20", coding: null },
    { compression: "none" as const, api: null, coding: null },
  ])("$compression to a target of API $api: Content-Encoding $coding", async ({ compression, api: targetApi, coding }) => {
    const codings: (string | null)[] = [];
    const { src, dst } = await pair({
      settings: { compression },
      fetch: async (request) => {
        if (new URL(request.url).pathname.endsWith("/batch")) {
          codings.push(request.headers.get("content-encoding"));
          return intoWorker(request);
        }
        const answered = await intoWorker(request);
        if (targetApi === null) return answered;
        const changed = new Response(answered.body, answered);
        changed.headers.set("x-reduct-api", targetApi);
        return changed;
      },
    });
    const large = bytesOf(300 * 1024, 7);
    await putRecord(src, "a", 1, "small one", { labels: { k: "v" } });
    await putRecord(src, "a", 2, large);
    await sendNow(src);
    expect(codings.length).toBeGreaterThan(0);
    expect(new Set(codings)).toEqual(new Set([coding]));
    expect(text((await readAt(dst, "a", 1)).body)).toBe("small one");
    expect((await readAt(dst, "a", 2)).body).toEqual(large);
    expect((await statusOf(src)).pending_records).toBe(0);
  });
});

describe("compression: a batch of compressible records and a large incompressible one", () => {
  // Measured in a two-server run: with zstd the batch failed part way at the source every time,
  // so the replication retried it forever and nothing after it arrived.
  const text = (size: number, salt: number) =>
    new TextEncoder().encode(`cam/front ${1_700_000_000_000_000 + salt} `.repeat(Math.ceil(size / 20) + 1).slice(0, size));
  const sizes = [1691, 786, 1626, 2746, 5765, 386, 2162, 0, 6040, 2951, 311_112, 4767, 885, 3941, 4511, 465, 4865];
  it.each(["zstd", "gzip"] as const)("%s: every record arrives", async (compression) => {
    const { src, dst } = await pair({ settings: { compression } });
    const bodies = sizes.map((size, i) => (size > 100_000 ? bytesOf(size, i + 2) : text(size, i)));
    for (const [i, body] of bodies.entries()) await putRecord(src, "a", i + 1, body);
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(0);
    for (const [i, body] of bodies.entries()) expect((await readAt(dst, "a", i + 1)).body).toEqual(body);
  });
});

describe("a dst_token with write access only (ReductStore's GET of the bucket needs read access, its HEAD any token)", () => {
  async function writeOnlyToken(bucket: string): Promise<string> {
    const response = await api("POST", `/tokens/${uniqueName("writer")}`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ full_access: false, read: [], write: [bucket] }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { value: string }).value;
  }

  /** A pair whose target is named up front, so the token can be made for it. */
  async function writeOnlyPair(options: { createTarget?: boolean; fetch?: OutboundFetch } = {}) {
    const dst = uniqueName("rdst-w");
    const token = await writeOnlyToken(dst);
    return pair({ ...options, settings: { dst_bucket: dst, dst_token: token } });
  }

  it("writes and label updates arrive", async () => {
    const { src, dst } = await writeOnlyPair();
    await putRecord(src, "a", 1, "one", { labels: { x: "1" } });
    await sendNow(src);
    expect((await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-y": "2" } })).status).toBe(200);
    await sendNow(src);
    const read = await readAt(dst, "a", 1);
    expect([read.status, text(read.body), read.labels]).toEqual([200, "one", { x: "1", y: "2" }]);
    expect(await statusOf(src)).toMatchObject({ pending_records: 0, is_active: true, diagnostics: { hourly: { errored: 0 } } });
  });

  it("a lost answer: the retry's 409 is taken as delivered (the token cannot read the record back)", async () => {
    let lose = true;
    const heads: number[] = [];
    const { src, dst } = await writeOnlyPair({
      fetch: async (request) => {
        const answered = await intoWorker(request);
        if (request.method === "HEAD" && new URL(request.url).searchParams.has("ts")) heads.push(answered.status);
        if (!lose || !new URL(request.url).pathname.endsWith("/batch")) return answered;
        lose = false;
        await answered.body?.cancel();
        throw new Error("connection reset after the target stored the batch (injected)");
      },
    });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
    await sendNow(src);
    expect(heads).toEqual([403]);
    const status = await statusOf(src);
    expect({ pending: status.pending_records, ok: status.diagnostics.hourly.ok }).toEqual({ pending: 0, ok: 1 });
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
  });

  it("an upload the target's crash left pending: kept while it holds the timestamp, written after its lease", async () => {
    const { src, dst } = await writeOnlyPair();
    // The target died while receiving a.1: its reservation lives on until the lease ends, then
    // the timestamp is free and the target has nothing. A write-only token cannot HEAD the record.
    const ticket = await stubOf(dst).reserveUpload({ entry: "a", ts: 1, size: 1_000_000, contentType: "x/y", labels: {} });
    expect(ticket.ok).toBe(true);
    // As the target answers a batch and a single write for such a timestamp.
    const batch = await api("POST", `/b/${dst}/a/batch`, { headers: { "x-reduct-time-1": "1,x/y" }, body: "x" });
    expect([batch.status, batch.headers.get("x-reduct-error-1")]).toEqual([
      200,
      `425,Record with timestamp 1 in ${dst}/a is still being written`,
    ]);
    await batch.text();
    const single = await api("POST", `/b/${dst}/a?ts=1`, { body: "x" });
    expect([single.status, single.headers.get("x-reduct-error")]).toEqual([409, "A record with timestamp 1 already exists"]);
    await single.text();
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    const held = await statusOf(src);
    expect({ pending: held.pending_records, codes: Object.keys(held.diagnostics.hourly.errors) }).toEqual({
      pending: 1,
      codes: ["425"],
    });
    await runInDurableObject(stubOf(dst), (_instance, state) => {
      state.storage.sql.exec("UPDATE pending_records SET lease_expires_at_ms = 0");
    });
    await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(0);
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
  });

  it("a missing target bucket cannot be created with it: records kept, 403 counted", async () => {
    const { src, dst } = await writeOnlyPair({ createTarget: false });
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    const status = await statusOf(src);
    expect({ pending: status.pending_records, codes: Object.keys(status.diagnostics.hourly.errors) }).toEqual({
      pending: 1,
      codes: ["403"],
    });
    await createBucket(dst);
    await sendNow(src);
    expect(text((await readAt(dst, "a", 1)).body)).toBe("one");
    expect((await statusOf(src)).pending_records).toBe(0);
  });
});

type Parts = ObjectParts & { storage: DurableObjectStorage };

/**
 * Answers the first request `at` picks after running `meanwhile` (in the object, while the request
 * is out: a call into the object from outside would wait for the send); the others go to the Worker.
 */
function holding(at: (request: Request) => boolean, meanwhile: () => void, answer: OutboundFetch) {
  let held = false;
  const requests: string[] = [];
  const fetch: OutboundFetch = async (request) => {
    requests.push(`${request.method} ${request.url}`);
    if (held || !at(request)) return intoWorker(request);
    held = true;
    meanwhile();
    return answer(request);
  };
  return { fetch, requests };
}

const isBatch = (request: Request) => new URL(request.url).pathname.endsWith("/batch");
const isBucketCheck = (request: Request) => request.method === "HEAD" && !isBatch(request) && !new URL(request.url).search;
const answering =
  (status: number): OutboundFetch =>
  async (request) => {
    await request.body?.cancel();
    return new Response(null, { status, headers: { "x-reduct-error": `answered ${status}` } });
  };

/** The object's parts, to act on inside it while a request is out. */
async function partsIn(bucket: string): Promise<Parts> {
  return runInDurableObject(stubOf(bucket), (instance, state) => Object.assign(partsOf(instance), { storage: state.storage }));
}

/** The sender's state of replication `r`, straight from the object's tables. */
async function senderState(bucket: string) {
  return runInDurableObject(stubOf(bucket), (_instance, state) => {
    const row = state.storage.sql
      .exec(
        "SELECT log_count, backoff_ms, backoff_until_ms, refusals, is_active, target_checked FROM replications WHERE name = 'r'",
      )
      .one();
    const rows = Number(state.storage.sql.exec("SELECT count(*) AS n FROM replication_log WHERE replication = 'r'").one().n);
    return { ...row, rows };
  });
}

const targetSettings = (src: string, dst: string, extra: Partial<ReplicationSettings> = {}): ReplicationSettings => ({
  src_bucket: src,
  dst_bucket: dst,
  dst_host: "http://localhost",
  dst_token: TOKEN,
  entries: [],
  dst_prefix: "",
  // Nothing sends the new log while the test looks at it.
  mode: "paused",
  compression: "none",
  ...extra,
});

describe("a replication deleted and created again under its name while a request is out", () => {
  it.each([
    { name: "the batch answered 200", at: isBatch, answer: intoWorker, refusals: 0 },
    { name: "the batch answered 503", at: isBatch, answer: answering(503), refusals: 0 },
    { name: "the batch answered 400 for the eighth time", at: isBatch, answer: answering(400), refusals: 7 },
    { name: "the first contact answered 200", at: isBucketCheck, answer: intoWorker, refusals: 0 },
    { name: "the first contact answered 503", at: isBucketCheck, answer: answering(503), refusals: 0 },
  ])("$name: the new one inherits nothing", async ({ at, answer, refusals }) => {
    let parts: Parts | undefined;
    let recreate = () => {};
    const hold = holding(at, () => recreate(), answer);
    const { src, dst } = await pair({ fetch: hold.fetch });
    parts = await partsIn(src);
    recreate = () => {
      if (!parts) return;
      const { replications, storage } = parts;
      replications.set([]);
      replications.set([{ name: "r", settings: targetSettings(src, dst) }]);
      // A write logged for the new replication before the answer comes.
      storage.transactionSync(() => {
        const journal = replications.journal(src, Date.now());
        journal?.logged("a", 3, {}, "write");
        journal?.finish();
      });
    };
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "a", 2, "two");
    await runInDurableObject(stubOf(src), (_instance, state) => {
      state.storage.sql.exec("UPDATE replications SET refusals = ?", refusals);
    });
    await sendNow(src);
    expect(await senderState(src)).toEqual({
      log_count: 1,
      rows: 1,
      backoff_ms: 0,
      backoff_until_ms: 0,
      refusals: 0,
      is_active: 0,
      target_checked: 0,
    });
    expect((await statusOf(src)).diagnostics.hourly).toEqual({ ok: 0, errored: 0, errors: {} });
  });
});

describe("a replication's dst_host changed while a request is out", () => {
  it.each([
    // Both hosts are this Worker: the batch the old one took meets a 409 at the new one, confirmed.
    { name: "the batch answered 200", at: isBatch, confirmed: true },
    { name: "the first contact answered 200", at: isBucketCheck, confirmed: false },
  ])("$name: the rows stay and go to the new host, which is checked first", async ({ at, confirmed }) => {
    let change = () => {};
    const hold = holding(at, () => change(), intoWorker);
    const { src, dst } = await pair({ fetch: hold.fetch });
    const parts = await partsIn(src);
    const moved = targetSettings(src, dst, { dst_host: "http://new-host.test" });
    change = () => parts.replications.set([{ name: "r", settings: moved }]);
    await putRecord(src, "a", 1, "one");
    await sendNow(src);
    expect(await senderState(src)).toMatchObject({ log_count: 1, rows: 1, target_checked: 0, backoff_ms: 0 });
    expect((await statusOf(src)).diagnostics.hourly.ok).toBe(0);
    hold.requests.length = 0;
    expect((await stubOf(src).setReplications([{ name: "r", settings: { ...moved, mode: "enabled" } }])).ok).toBe(true);
    await sendNow(src);
    const host = `http://new-host.test/api/v1/b/${dst}`;
    const check = confirmed ? [`HEAD ${host}/a?ts=1`] : [];
    expect(hold.requests).toEqual([`HEAD ${host}`, `POST ${host}/a/batch`, ...check]);
    expect(await statusOf(src)).toMatchObject({ pending_records: 0, diagnostics: { hourly: { ok: 1, errored: 0 } } });
  });
});

describe("an outage never drops a batch, however long, and the refusals after it count from one", () => {
  /** Write batches answered as `answer` says; everything else (the bucket check) goes to the Worker. */
  const outage = (status: number): OutboundFetch =>
    status === 0
      ? async () => {
          throw new Error("connection refused (injected)");
        }
      : answering(status);
  it.each([0, 500, 502, 503, 504, 401, 403, 404, 408, 425, 429])(
    "%i for longer than the refusal window, then 400: kept until the eighth 400 in a row",
    async (status) => {
      let answer: OutboundFetch = outage(status);
      const { src } = await pair({ fetch: batchesAnswer((request) => answer(request)) });
      await putRecord(src, "a", 1, "one");
      for (let attempt = 0; attempt < 12; attempt++) await sendNow(src);
      expect((await statusOf(src)).pending_records).toBe(1);
      answer = answering(400);
      for (let attempt = 0; attempt < 7; attempt++) await sendNow(src);
      expect((await statusOf(src)).pending_records).toBe(1);
      await sendNow(src);
      const after = await statusOf(src);
      expect({ pending: after.pending_records, dropped: after.diagnostics.hourly.errors["400"]?.count }).toEqual({
        pending: 0,
        dropped: 8, // seven failed attempts and the record dropped by the eighth
      });
    },
  );

  it.each([0, 503, 401, 429])("seven 400s, one %i, seven 400s: not eight in a row, kept", async (status) => {
    let answer: OutboundFetch = answering(400);
    const { src } = await pair({ fetch: batchesAnswer((request) => answer(request)) });
    await putRecord(src, "a", 1, "one");
    for (let attempt = 0; attempt < 7; attempt++) await sendNow(src);
    answer = outage(status);
    await sendNow(src);
    answer = answering(400);
    for (let attempt = 0; attempt < 7; attempt++) await sendNow(src);
    expect((await statusOf(src)).pending_records).toBe(1);
  });
});

describe("a per-record error", () => {
  /** Batches go to the Worker, and their answer then names `status` for record 1. */
  const recordAnswer =
    (status: number): OutboundFetch =>
    async (request) => {
      await (await intoWorker(request)).body?.cancel();
      return new Response(null, { headers: { "x-reduct-error-1": `${status},record refused (injected)` } });
    };
  it.each([
    ...[500, 503, 507, 408, 429, 401, 403].map((status) => ({ status, kind: "write", kept: true })),
    ...[500, 503, 429, 403].map((status) => ({ status, kind: "label update", kept: true })),
    ...[400, 413, 422].map((status) => ({ status, kind: "write", kept: false })),
    { status: 422, kind: "label update", kept: false },
  ])("$status to a $kind: kept and retried: $kept", async ({ status, kind, kept }) => {
    let answer: OutboundFetch = intoWorker;
    const { src } = await pair({ fetch: batchesAnswer((request) => answer(request)) });
    await putRecord(src, "a", 1, "one");
    if (kind === "label update") {
      await sendNow(src);
      expect((await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-y": "2" } })).status).toBe(200);
    }
    answer = recordAnswer(status);
    await sendNow(src);
    const after = await statusOf(src);
    expect({ pending: after.pending_records, counted: after.diagnostics.hourly.errors[String(status)]?.count }).toEqual({
      pending: kept ? 1 : 0,
      counted: 1,
    });
    // Its entry is held back, not the replication: other entries go at once.
    const until = await runInDurableObject(stubOf(src), (_instance, state) =>
      Number(state.storage.sql.exec("SELECT backoff_until_ms FROM replications").one().backoff_until_ms),
    );
    expect(until).toBe(0);
    const due = await dueAt(src);
    expect(due !== null && due > Date.now()).toBe(kept);
  });
});

describe("a label removed at the source after the record was sent", () => {
  // ReductStore's sender sends a label update as the record's current labels (`0,,<labels>`), and
  // the target merges them: a removed label is not among them, so it stays at the target.
  it("stays at the target; the update carries the labels the record has", async () => {
    const sent: string[] = [];
    const { src, dst } = await pair({
      fetch: async (request) => {
        if (request.method === "PATCH") sent.push(request.headers.get("x-reduct-time-1") ?? "");
        return intoWorker(request);
      },
    });
    await putRecord(src, "a", 1, "one", { labels: { x: "1", y: "2" } });
    await sendNow(src);
    const removed = await api("PATCH", `/b/${src}/a?ts=1`, { headers: { "x-reduct-label-y": "", "x-reduct-label-z": "3" } });
    expect(removed.status).toBe(200);
    expect((await readAt(src, "a", 1)).labels).toEqual({ x: "1", z: "3" });
    await sendNow(src);
    expect(sent).toEqual(["0,,x=1,z=3"]);
    expect((await readAt(dst, "a", 1)).labels).toEqual({ x: "1", y: "2", z: "3" });
    expect((await statusOf(src)).pending_records).toBe(0);
  });
});

describe("one entry whose records the target keeps failing does not hold up the others", () => {
  /** The `x-reduct-time-*` timestamps of a batch request, in header order. */
  const timesOf = (request: Request) =>
    [...request.headers.keys()]
      .filter((name) => name.startsWith("x-reduct-time-"))
      .map((name) => name.slice("x-reduct-time-".length))
      .join(" ");
  const entryOf = (request: Request) => new URL(request.url).pathname.split("/").at(-2);
  /** A 200 naming every record of the batch as failed with `status`; nothing is stored. */
  const failEach = async (request: Request, status = 500) => {
    await request.body?.cancel();
    const headers: Record<string, string> = {};
    for (const ts of timesOf(request).split(" ")) headers[`x-reduct-error-${ts}`] = `${status},injected`;
    return new Response(null, { headers });
  };

  /**
   * A second sender on the object's tables, on a clock the test moves: the object's own alarm keeps
   * its own sender (its fetch failing every record, so it delivers nothing and holds nothing back here).
   */
  async function simulated(
    bucket: string,
    fetch: (clock: { now: number }) => OutboundFetch,
    body: (sim: ReplicationSend, clock: { now: number }) => Promise<void>,
  ): Promise<void> {
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      await state.storage.deleteAlarm();
      const parts = partsOf(instance);
      parts.outbound.fetch = batchesAnswer((request) => failEach(request));
      const deps = (parts.replicationSend as unknown as { deps: ReplicationSendDeps }).deps;
      const clock = { now: Date.now() };
      const outbound = fetch(clock);
      const sim = new ReplicationSend({ ...deps, fetch: () => outbound, now: () => clock.now });
      await body(sim, clock);
    });
  }

  it("a poisoned entry (per-record 500 for ever) does not stop a later entry's records", async () => {
    const poisoned: string[] = [];
    const { src, dst } = await pair({
      fetch: batchesAnswer(async (request) => {
        if (entryOf(request) !== "poison") return intoWorker(request);
        poisoned.push(timesOf(request));
        return failEach(request);
      }),
    });
    await putRecord(src, "poison", 1, "bad");
    await sendNow(src);
    await putRecord(src, "good", 2, "fine");
    await sendNow(src);
    expect(text((await readAt(dst, "good", 2)).body)).toBe("fine");
    expect((await readAt(dst, "poison", 1)).status).toBe(404);
    const status = await statusOf(src);
    expect({ pending: status.pending_records, ok: status.diagnostics.hourly.ok, held: poisoned.length > 0 }).toEqual({
      pending: 1,
      ok: 1,
      held: true,
    });
    expect(status.diagnostics.hourly.errors["500"]?.count).toBe(poisoned.length);
    const until = await runInDurableObject(stubOf(src), (_instance, state) =>
      Number(state.storage.sql.exec("SELECT backoff_until_ms FROM replications").one().backoff_until_ms),
    );
    expect(until).toBe(0); // the replication itself is not backed off
  });

  it("an entry held and delivered again writes one $system event each, naming the entry", async () => {
    let failing = true;
    const name = uniqueName("held");
    const { src } = await pair({
      name,
      fetch: batchesAnswer(async (request) => (entryOf(request) === "p" && failing ? failEach(request) : intoWorker(request))),
    });
    await putRecord(src, "p", 1, "one");
    await sendNow(src);
    await sendNow(src); // held again: nothing more
    failing = false;
    await sendNow(src);
    await putRecord(src, "p", 2, "two");
    await sendNow(src); // a success after a success neither
    const response = await api("POST", `/b/$system/replications/reduct-edge-test/${name}/q`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query_type: "QUERY" }),
    });
    const { id } = (await response.json()) as { id: number };
    const batch = await api("GET", `/b/$system/replications/reduct-edge-test/${name}/batch?q=${id}`);
    const events = [...batch.headers]
      .filter(([header]) => header.startsWith("x-reduct-time-"))
      .sort(([a], [b]) => Number(a.slice(14)) - Number(b.slice(14)))
      .map(([, value]) => (value.includes("status=error") ? "error" : value.includes("status=ok") ? "ok" : value));
    const body = await batch.text();
    expect(events).toEqual(["error", "ok"]);
    expect(body).toContain(`Replication '${name}' failed (500) for entry 'p': injected; its records are kept and sent again`);
    expect(body).toContain(`Replication '${name}' delivers entry 'p' again`);
  });

  it("a held entry is retried after its backoff, not before, and delivered once the target accepts", async () => {
    const { src, dst } = await pair();
    await putRecord(src, "p", 1, "one");
    let accept = false;
    const tries: number[] = [];
    await simulated(
      src,
      (clock) =>
        batchesAnswer(async (request) => {
          tries.push(clock.now);
          return accept ? intoWorker(request) : failEach(request, 503);
        }),
      async (sim, clock) => {
        const start = clock.now;
        await sim.run(clock.now + 10_000);
        expect(tries).toEqual([start]);
        expect(sim.nextDueAt()).toBe(start + SEND_BACKOFF_MIN_MS);
        clock.now = start + SEND_BACKOFF_MIN_MS - 1;
        await sim.run(clock.now + 10_000);
        expect(tries).toHaveLength(1); // still held
        clock.now = start + SEND_BACKOFF_MIN_MS;
        await sim.run(clock.now + 10_000);
        expect(sim.nextDueAt()).toBe(clock.now + 2 * SEND_BACKOFF_MIN_MS); // doubled
        accept = true;
        clock.now += 2 * SEND_BACKOFF_MIN_MS;
        await sim.run(clock.now + 10_000);
        expect(tries).toHaveLength(3);
        expect(sim.nextDueAt()).toBeNull();
        // A success resets the entry's backoff: its next failure holds it 1 s again.
        accept = false;
        await putRecord(src, "p", 2, "two");
        await sim.run(clock.now + 10_000);
        expect(sim.nextDueAt()).toBe(clock.now + SEND_BACKOFF_MIN_MS);
      },
    );
    expect(text((await readAt(dst, "p", 1)).body)).toBe("one");
  });

  it("a whole-request 503 still holds every entry (the target itself is down)", async () => {
    const batches: string[] = [];
    const { src } = await pair({
      fetch: batchesAnswer(async (request) => {
        batches.push(`${entryOf(request)}:${timesOf(request)}`);
        await request.body?.cancel();
        return new Response(null, { status: 503 });
      }),
    });
    await putRecord(src, "a", 1, "one");
    await putRecord(src, "b", 2, "two");
    const before = Date.now();
    await runInDurableObject(stubOf(src), async (instance, state) => {
      await state.storage.deleteAlarm();
      batches.length = 0;
      const send = partsOf(instance).replicationSend;
      await send.run(Date.now() + 10_000);
      expect(batches).toEqual(["a:1"]); // b is not tried: the target is down for it too
      expect(send.nextDueAt()).toBeGreaterThanOrEqual(before + SEND_BACKOFF_MIN_MS);
      await send.run(Date.now() + 10_000);
      expect(batches).toEqual(["a:1"]);
    });
    expect((await statusOf(src)).pending_records).toBe(2);
  });

  it("order within an entry is kept: a held entry goes again from its oldest record", async () => {
    let failP = true;
    const batches: string[] = [];
    const { src, dst } = await pair({
      fetch: batchesAnswer(async (request) => {
        batches.push(`${entryOf(request)}:${timesOf(request)}`);
        return entryOf(request) === "p" && failP ? failEach(request) : intoWorker(request);
      }),
    });
    await runInDurableObject(stubOf(src), (_instance, state) => state.storage.deleteAlarm());
    await putRecord(src, "p", 1, "one");
    await putRecord(src, "p", 2, "two");
    await putRecord(src, "g", 5, "five");
    await sendNow(src);
    await putRecord(src, "p", 3, "three");
    await sendNow(src);
    expect((await readAt(dst, "p", 3)).status).toBe(404); // not before 1 and 2
    failP = false;
    await sendNow(src);
    const pBatches = batches.filter((batch) => batch.startsWith("p:"));
    expect(pBatches.at(-1)).toBe("p:1 2 3");
    // Every attempt at p starts from its oldest record (an alarm between the writes may send fewer).
    for (const batch of pBatches) expect(["p:1", "p:1 2", "p:1 2 3"]).toContain(batch);
    expect(batches).toContain("g:5");
    for (const [ts, body] of [
      [1, "one"],
      [2, "two"],
      [3, "three"],
    ] as const)
      expect(text((await readAt(dst, "p", ts)).body)).toBe(body);
    expect((await statusOf(src)).pending_records).toBe(0);
  });

  it("no alarm spin: with every entry held, the next alarm is at the earliest hold's end", async () => {
    const { src } = await pair();
    await putRecord(src, "x", 1, "one");
    await putRecord(src, "y", 2, "two");
    let batches = 0;
    let runs = 0;
    await simulated(
      src,
      () =>
        batchesAnswer(async (request) => {
          batches++;
          return failEach(request);
        }),
      async (sim, clock) => {
        const end = clock.now + 10 * 60_000; // ten simulated minutes, an alarm at every due time
        for (;;) {
          const due = sim.nextDueAt();
          expect(due).not.toBeNull();
          clock.now = Math.max(clock.now, due ?? 0);
          if (clock.now > end || runs > 1_000) break;
          runs++;
          await sim.run(clock.now + 10_000);
        }
      },
    );
    // Per entry: 1, 2, 4, …, 32 s, then one try a minute: 7 + 9 in ten minutes, give or take one.
    const perEntry = 6 + Math.ceil((10 * 60_000 - 63_000) / SEND_BACKOFF_MAX_MS);
    expect(runs).toBeLessThanOrEqual(2 * (perEntry + 1));
    expect(batches).toBeGreaterThanOrEqual(2 * (perEntry - 1));
    expect(batches).toBeLessThanOrEqual(2 * (perEntry + 1));
    expect((await statusOf(src)).pending_records).toBe(2);
  });
});

describe("a target that never answers and another replication of the same bucket", () => {
  /** Never answers: gives up only when the request's own signal (its timeout) fires. */
  const hang: OutboundFetch = (request) =>
    new Promise((_resolve, reject) => {
      request.signal.addEventListener("abort", () => reject(request.signal.reason));
    });

  it("the other replication's records wait for the short check timeout, not the send timeout", async () => {
    const src = uniqueName("rsrc");
    const [deaf, live] = [uniqueName("rdeaf"), uniqueName("rlive")];
    await createBucket(src);
    await createBucket(live);
    await setFetch(src, (request) => (new URL(request.url).pathname.includes(`/${deaf}`) ? hang(request) : intoWorker(request)));
    const settings = (dst: string): ReplicationSettings => ({
      src_bucket: src,
      dst_bucket: dst,
      dst_host: "http://localhost",
      dst_token: TOKEN,
      entries: [],
      dst_prefix: "",
      mode: "enabled",
      compression: "none",
    });
    // "a" is sent first: the replications go one after another, in name order.
    await stubOf(src).setReplications([
      { name: "a", settings: settings(deaf) },
      { name: "b", settings: settings(live) },
    ]);
    await runInDurableObject(stubOf(src), (_instance, state) => state.storage.deleteAlarm());
    await putRecord(src, "e", 1, "one");
    const started = Date.now();
    await sendNow(src);
    const took = Date.now() - started;
    expect(text((await readAt(live, "e", 1)).body)).toBe("one");
    expect(took).toBeGreaterThanOrEqual(CHECK_TIMEOUT_MS - 100);
    expect(took).toBeLessThan(SEND_TIMEOUT_MS);
    expect((await statusOf(src, "a")).diagnostics.hourly.errors["0"]?.count).toBe(1);
  }, 20_000);

  it("after a request that got no answer, the next attempt checks the target first (short timeout)", async () => {
    let cut = true;
    const seen: string[] = [];
    const { src } = await pair({
      fetch: async (request) => {
        seen.push(request.method);
        if (request.method === "POST" && cut) {
          cut = false;
          throw new Error("connection reset (injected)");
        }
        return intoWorker(request);
      },
    });
    await runInDurableObject(stubOf(src), (_instance, state) => state.storage.deleteAlarm());
    await putRecord(src, "e", 1, "one");
    await sendNow(src);
    await sendNow(src);
    expect(seen.slice(-4)).toEqual(["HEAD", "POST", "HEAD", "POST"]);
    expect((await statusOf(src)).pending_records).toBe(0);
  });
});
