/**
 * The `$system` bucket: who may read it (full access or the exact `$system` permission, never a
 * wildcard), that it is provisioned, FIFO-limited and undeletable, that no client writes it, and
 * that API calls reach it as aggregated audit records.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { configFromEnv, DEFAULT_SYSTEM_EVENTS_QUOTA_BYTES, parseConfig } from "../../src/config";
import { AUDIT_OVERFLOW_SEGMENT, AuditAggregator } from "../../src/system/audit";
import { ensureSystemBucket, entrySegment, recordSystemEvent, SYSTEM_BUCKET } from "../../src/system/events";
import { api, expectError, uniqueName } from "../helpers/http";

const SYSTEM = encodeURIComponent(SYSTEM_BUCKET);
const config = configFromEnv(env);
const instance = entrySegment(config.instanceName);

interface Created {
  name: string;
  value: string;
}

async function createToken(body: unknown): Promise<Created> {
  const name = uniqueName("sys-token");
  const response = await api("POST", `/tokens/${name}`, { body: JSON.stringify(body) });
  expect(response.status, await response.clone().text()).toBe(200);
  const { value } = (await response.json()) as { value: string };
  return { name, value };
}

async function listed(token?: string): Promise<string[]> {
  const response = await api("GET", "/list", token === undefined ? {} : { token });
  expect(response.status).toBe(200);
  const { buckets } = (await response.json()) as { buckets: { name: string }[] };
  return buckets.map((bucket) => bucket.name);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The JSON bodies of every record of a `$system` entry, oldest first. Each record's `status` label
 * must be `status`, or (null) its body's status, as an audit record's HTTP status.
 */
async function systemRecords(entry: string, status: string | null = "ok"): Promise<Record<string, unknown>[]> {
  const bodies: Record<string, unknown>[] = [];
  const query = await api("POST", `/b/${SYSTEM}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY" }) });
  if (query.status === 404) {
    await query.text();
    return bodies;
  }
  expect(query.status, await query.clone().text()).toBe(200);
  const { id } = (await query.json()) as { id: number };
  for (;;) {
    const read = await api("GET", `/b/${SYSTEM}/${entry}?q=${id}`);
    if (read.status === 204 || read.status === 404) {
      await read.text();
      return bodies;
    }
    expect(read.status).toBe(200);
    const body = (await read.json()) as Record<string, unknown>;
    expect(read.headers.get("x-reduct-label-status")).toBe(status ?? String(body.status));
    bodies.push(body);
    if (read.headers.get("x-reduct-last") === "1") return bodies;
  }
}

async function waitForRecords(entry: string, atLeast: number, status: string | null = "ok"): Promise<Record<string, unknown>[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const records = await systemRecords(entry, status);
    if (records.length >= atLeast) return records;
    await sleep(100);
  }
  throw new Error(`fewer than ${atLeast} records in ${entry}`);
}

const t = {} as Record<"noPerm" | "wildcard" | "exact" | "writer", Created>;

beforeAll(async () => {
  await ensureSystemBucket(env, config);
  t.noPerm = await createToken({});
  t.wildcard = await createToken({ permissions: { read: ["*"], write: ["*"] } });
  t.exact = await createToken({ permissions: { read: ["$system"] } });
  t.writer = await createToken({ permissions: { read: ["$system"], write: ["$system"] } });
});

describe("reading $system", () => {
  const cases: Array<{ who: keyof typeof t | "full"; status: number; visible: boolean }> = [
    { who: "noPerm", status: 403, visible: false },
    { who: "wildcard", status: 403, visible: false },
    { who: "exact", status: 200, visible: true },
    { who: "full", status: 200, visible: true },
  ];
  it.each(cases)("token $who: GET /b/$system answers $status, listed: $visible", async ({ who, status, visible }) => {
    const token = who === "full" ? undefined : t[who].value;
    const response = await api("GET", `/b/${SYSTEM}`, token === undefined ? {} : { token });
    if (status === 200) {
      expect(response.status).toBe(200);
      await response.text();
    } else {
      await expectError(
        response,
        status,
        `Token '${t[who as keyof typeof t].name}' doesn't have read access to bucket '$system'`,
      );
    }
    expect((await listed(token)).includes(SYSTEM_BUCKET)).toBe(visible);
  });

  it("is provisioned and FIFO-limited to RS_SYSTEM_EVENTS_QUOTA_SIZE (10 GB by default)", async () => {
    const response = await api("GET", `/b/${SYSTEM}`);
    const { info, settings } = (await response.json()) as {
      info: { is_provisioned: boolean };
      settings: { quota_type: string; quota_size: number };
    };
    expect(info.is_provisioned).toBe(true);
    expect(settings).toMatchObject({ quota_type: "FIFO", quota_size: DEFAULT_SYSTEM_EVENTS_QUOTA_BYTES });
    const list = (await (await api("GET", "/list")).json()) as { buckets: { name: string; is_provisioned: boolean }[] };
    expect(list.buckets[0]).toMatchObject({ name: SYSTEM_BUCKET, is_provisioned: true });
  });
});

describe("changing $system", () => {
  const body = "{}";
  const cases: Array<{
    name: string;
    who: "full" | "writer";
    method: string;
    path: string;
    status: number;
    message: (n: string) => string;
  }> = [
    {
      name: "delete",
      who: "full",
      method: "DELETE",
      path: "",
      status: 409,
      message: () => "Can't remove provisioned bucket '$system'",
    },
    {
      name: "settings",
      who: "full",
      method: "PUT",
      path: "",
      status: 409,
      message: () => "Can't change settings of provisioned bucket '$system'",
    },
    {
      name: "rename",
      who: "full",
      method: "PUT",
      path: "/rename",
      status: 409,
      message: () => "Can't rename provisioned bucket '$system'",
    },
    ...(["full", "writer"] as const).flatMap((who) => [
      {
        name: "write",
        who,
        method: "POST",
        path: "/entry-1?ts=1",
        status: 403,
        message: (n: string) => `Token '${n}' doesn't have write access to bucket '$system'`,
      },
      {
        name: "batch write",
        who,
        method: "POST",
        path: "/entry-1/batch",
        status: 403,
        message: (n: string) => `Token '${n}' doesn't have write access to bucket '$system'`,
      },
      {
        name: "remove entry",
        who,
        method: "DELETE",
        path: `/audit/${instance}`,
        status: 403,
        message: (n: string) => `Token '${n}' doesn't have write access to bucket '$system'`,
      },
    ]),
  ];
  it.each(cases)("$name by $who → $status", async ({ who, method, path, status, message }) => {
    const token = who === "full" ? undefined : t.writer.value;
    const name = who === "full" ? "init-token" : t.writer.name;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (path.endsWith("/batch")) headers["x-reduct-time-1"] = "1,text/plain";
    const requestBody =
      path === "/rename" ? JSON.stringify({ new_name: uniqueName("renamed") }) : method === "DELETE" ? null : body;
    const response = await api(method, `/b/${SYSTEM}${path}`, {
      ...(token === undefined ? {} : { token }),
      headers,
      body: requestBody,
    });
    await expectError(response, status, message(name));
    expect((await listed()).includes(SYSTEM_BUCKET)).toBe(true);
  });

  it("creating it again (another isolate's first event) keeps its records", async () => {
    const entry = `lifecycle/${instance}/${uniqueName("policy")}`;
    await recordSystemEvent(env, config, entry, "ok", "before");
    await ensureSystemBucket(env, config);
    expect(await systemRecords(entry)).toHaveLength(1);
  });

  it("a client cannot create it either", async () => {
    const response = await api("POST", `/b/${SYSTEM}`);
    expect(response.status).toBe(422);
    await response.text();
  });
});

describe("system events", () => {
  it("recordSystemEvent writes {timestamp, instance, status, message, ...payload} labelled with status", async () => {
    const entry = `lifecycle/${instance}/${uniqueName("policy")}`;
    await recordSystemEvent(env, config, entry, "ok", "run finished", { removed_records: 3 });
    await recordSystemEvent(env, config, entry, "ok", "run finished", { removed_records: 0 });
    const [first, second] = await systemRecords(entry);
    expect(first).toMatchObject({ instance: config.instanceName, status: "ok", message: "run finished", removed_records: 3 });
    expect(second).toMatchObject({ removed_records: 0 });
    expect(Number(second?.timestamp)).toBeGreaterThan(Number(first?.timestamp));
  });

  it("does nothing when RS_SYSTEM_EVENTS_ENABLED=false", async () => {
    const disabled = parseConfig({ ...env, RS_SYSTEM_EVENTS_ENABLED: "false" });
    const entry = `lifecycle/${instance}/${uniqueName("policy")}`;
    await recordSystemEvent(env, disabled, entry, "ok", "not written");
    expect(await systemRecords(entry)).toEqual([]);
  });
});

describe("audit", () => {
  it("the first call of an isolate flushes at once; later calls are summed until the interval passes", async () => {
    const audit = new AuditAggregator();
    const tokenName = uniqueName("audited");
    const call = {
      tokenName,
      method: "GET",
      path: "/api/v1/info",
      clientIp: "203.0.113.7",
      durationMs: 2,
      status: 200,
      message: "",
    };
    const t0 = Date.now();
    const first = audit.record(env, config, call, t0);
    expect(first).not.toBeNull();
    await first;
    for (let i = 1; i <= 3; i++) expect(audit.record(env, config, call, t0 + i * 1000)).toBeNull();
    expect(audit.record(env, config, { ...call, method: "POST" }, t0 + 5000)).toBeNull();
    const due = audit.record(env, config, call, t0 + config.systemEvents.flushIntervalMs);
    expect(due).not.toBeNull();
    await due;
    const records = await systemRecords(`audit/${instance}/${entrySegment(tokenName)}`, "200");
    expect(records.map(({ method, call_count }) => [method, call_count])).toEqual([
      ["GET", 1],
      ["GET", 4],
      ["POST", 1],
    ]);
    expect(records[1]).toMatchObject({
      instance: config.instanceName,
      status: 200,
      message: "",
      token_name: tokenName,
      method: "GET",
      path: "/api/v1/info",
      client_ip: "203.0.113.7",
      call_count: 4,
    });
    expect(Number(records[1]?.duration)).toBeCloseTo(0.008, 6);
  });

  it("calls through the API reach audit/<instance>/<token> and $system's entry_count", async () => {
    // The shared aggregator may have flushed in an earlier test of this isolate: a 1 s interval
    // makes the next call due.
    await sleep(10);
    const fast = { ...env, RS_SYSTEM_EVENTS_FLUSH_INTERVAL: "1" };
    const response = await api("GET", "/info", { token: t.exact.value });
    await response.text();
    const { auditAggregator } = await import("../../src/system/audit");
    await sleep(1100);
    await auditAggregator.record(
      fast,
      configFromEnv(fast),
      { tokenName: t.exact.name, method: "GET", path: "/api/v1/info", clientIp: null, durationMs: 1, status: 200, message: "" },
      Date.now(),
    );
    const records = await waitForRecords(`audit/${instance}/${entrySegment(t.exact.name)}`, 1, null);
    expect(records.some((record) => record.path === "/api/v1/b/$system")).toBe(true);
    expect(records.every((record) => record.token_name === t.exact.name)).toBe(true);
    const info = (await (await api("GET", `/b/${SYSTEM}`, { token: t.exact.value })).json()) as { info: { entry_count: number } };
    expect(info.info.entry_count).toBeGreaterThanOrEqual(1);
  });
});

describe("audit status", () => {
  it("records each call's HTTP status (label and body) and its x-reduct-error, summed apart", async () => {
    const missing = uniqueName("missing");
    const calls: [string, string, { token?: string; body?: string }, number][] = [
      ["GET", "/info", {}, 200],
      ["GET", "/info", {}, 200],
      ["GET", `/b/${missing}`, {}, 404],
      ["GET", `/b/${missing}`, {}, 404],
      ["POST", "/b/bad$name", {}, 422],
      ["GET", `/b/${SYSTEM}`, { token: t.noPerm.value }, 403],
      ["GET", "/info", { token: "no-such-token" }, 401],
      ["GET", `/b/${missing}`, { token: "no-such-token" }, 401],
    ];
    const expected = new Map<string, { status: number; message: string; call_count: number; token_name: string }>();
    for (const [method, path, options, status] of calls) {
      const response = await api(method, path, options);
      expect(response.status).toBe(status);
      await response.text();
      const message = response.headers.get("x-reduct-error") ?? "";
      expect(message === "").toBe(status === 200);
      const token_name = status === 401 ? "unauthorized" : options.token === undefined ? "init-token" : t.noPerm.name;
      const key = JSON.stringify([token_name, method, status]);
      const seen = expected.get(key);
      expected.set(key, { status, message, token_name, call_count: (seen?.call_count ?? 0) + 1 });
    }
    // The shared aggregator flushes with the next call once a 1 s interval has passed.
    await sleep(1100);
    const fast = { ...env, RS_SYSTEM_EVENTS_FLUSH_INTERVAL: "1" };
    const { auditAggregator } = await import("../../src/system/audit");
    const flushing = {
      tokenName: uniqueName("flush"),
      method: "GET",
      path: "/",
      clientIp: null,
      durationMs: 1,
      status: 200,
      message: "",
    };
    await auditAggregator.record(fast, configFromEnv(fast), flushing, Date.now());
    for (const want of expected.values()) {
      const records = await waitForRecords(`audit/${instance}/${entrySegment(want.token_name)}`, 1, null);
      const found = records.filter((record) => record.status === want.status && record.message === want.message);
      expect(found, JSON.stringify(records)).not.toEqual([]);
      const counted = found.reduce((sum, record) => sum + Number(record.call_count), 0);
      // Other tests of this file make the same calls; only the missing bucket's name is new.
      if (want.message.includes(missing)) expect(counted).toBe(want.call_count);
      else expect(counted).toBeGreaterThanOrEqual(want.call_count);
    }
  });
});

describe("audit bounds", () => {
  const callOf = (tokenName: string, path = "/api/v1/info") => ({
    tokenName,
    method: "GET",
    path,
    clientIp: null,
    durationMs: 1,
    status: 200,
    message: "",
  });

  it("at the group cap a flush starts at once, whatever the interval, and nothing is dropped", async () => {
    const audit = new AuditAggregator({ groups: 3, chars: 1_000_000 });
    const token = uniqueName("capped");
    const t0 = Date.now();
    await audit.record(env, config, callOf(token, "/first"), t0);
    for (const path of ["/a", "/b", "/c"]) expect(audit.record(env, config, callOf(token, path), t0 + 1)).toBeNull();
    const early = audit.record(env, config, callOf(token, "/d"), t0 + 2);
    expect(early).not.toBeNull();
    expect(audit.held()).toEqual({ groups: 1, chars: expect.any(Number), overflowCalls: 0 });
    await early;
    const records = await systemRecords(`audit/${instance}/${entrySegment(token)}`, "200");
    expect(records.map((record) => record.path)).toEqual(["/first", "/a", "/b", "/c"]);
  });

  it("calls that find the sums full while a flush runs are counted and written as one warning", async () => {
    const audit = new AuditAggregator({ groups: 1, chars: 1_000_000 });
    const token = uniqueName("overflow");
    const t0 = Date.now();
    const running = audit.record(env, config, callOf(token, "/first"), t0);
    expect(running).not.toBeNull();
    expect(audit.record(env, config, callOf(token, "/a"), t0 + 1)).toBeNull();
    expect(audit.record(env, config, callOf(token, "/b"), t0 + 2)).toBeNull();
    expect(audit.record(env, config, callOf(token, "/c"), t0 + 3)).toBeNull();
    expect(audit.held()).toMatchObject({ groups: 1, overflowCalls: 2 });
    await running;
    await audit.record(env, config, callOf(token, "/a"), t0 + config.systemEvents.flushIntervalMs);
    const records = await systemRecords(`audit/${instance}/${entrySegment(token)}`, "200");
    expect(records.map((record) => [record.path, record.call_count])).toEqual([
      ["/first", 1],
      ["/a", 2],
    ]);
    const overflow = (await systemRecords(`audit/${instance}/${AUDIT_OVERFLOW_SEGMENT}`, "warning")).at(-1);
    expect(overflow).toMatchObject({ status: "warning", call_count: 2 });
    expect(audit.held()).toEqual({ groups: 0, chars: 0, overflowCalls: 0 });
  });

  it("a long path is held once per group, and the character bound flushes early", async () => {
    const audit = new AuditAggregator({ groups: 1000, chars: 10_000 });
    const t0 = Date.now();
    await audit.record(env, config, callOf(uniqueName("warm")), t0);
    const path = `/api/v1/b/${"x".repeat(4000)}`;
    const tokens = [uniqueName("long"), uniqueName("long"), uniqueName("long")];
    expect(audit.record(env, config, callOf(tokens[0] ?? "", path), t0 + 1)).toBeNull();
    expect(audit.record(env, config, callOf(tokens[1] ?? "", path), t0 + 2)).toBeNull();
    // Each group holds its path once plus a short key of token, method and client IP.
    const held = audit.held();
    expect(held.groups).toBe(2);
    expect(held.chars).toBeLessThan(2 * (path.length + 100));
    // A third would pass the bound: it starts a flush and is held alone afterwards.
    const early = audit.record(env, config, callOf(tokens[2] ?? "", path), t0 + 3);
    expect(early).not.toBeNull();
    expect(audit.held().groups).toBe(1);
    await early;
  });
});
