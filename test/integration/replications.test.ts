/**
 * The replication API as ReductStore 1.21 answers it: shapes, every status and error string in its
 * order of checks, the token never shown back and kept by an update without one, full access only,
 * and what the source bucket's object is handed after every change (all replications of its
 * bucket) and asked for (status; an error shows the replication idle).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ReplicationSpec } from "../../src/model/replications";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";
import { recordingEnv } from "../helpers/replication-calls";

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
/** A target nothing listens on: whatever a sender does, it stays inactive with nothing delivered. */
const HOST = "http://127.0.0.1:9";

function settingsFor(src: string, extra: Record<string, unknown> = {}) {
  return { src_bucket: src, dst_bucket: "remote", dst_host: HOST, ...extra };
}

async function create(name: string, body: unknown): Promise<void> {
  const response = await api("POST", `/replications/${name}`, json(body));
  expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ status: 200, error: null });
}

async function full(name: string) {
  const response = await api("GET", `/replications/${name}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { info: Record<string, unknown>; settings: Record<string, unknown>; diagnostics: unknown };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("replication API", () => {
  it("creates, shows, lists, updates, switches and deletes a replication", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("repl");
    await create(name, settingsFor(src));

    expect(await full(name)).toEqual({
      info: { name, mode: "enabled", is_active: false, is_provisioned: false, pending_records: 0 },
      settings: {
        src_bucket: src,
        dst_bucket: "remote",
        dst_host: HOST,
        dst_token: null,
        entries: [],
        dst_prefix: "",
        when: null,
        mode: "enabled",
        compression: "none",
      },
      diagnostics: { hourly: { ok: 0, errored: 0, errors: {} } },
    });
    const list = (await (await api("GET", "/replications")).json()) as { replications: unknown[] };
    expect(list.replications).toContainEqual({
      name,
      mode: "enabled",
      is_active: false,
      is_provisioned: false,
      pending_records: 0,
    });

    const update = settingsFor(src, {
      dst_bucket: "other",
      entries: ["cam/*", "!cam/raw"],
      when: { "&score": { $gt: 1 } },
      dst_prefix: "robot-1/",
      compression: "zstd",
      mode: "paused",
    });
    expect((await api("PUT", `/replications/${name}`, json(update))).status).toBe(200);
    const updated = await full(name);
    expect(updated.settings).toEqual({ ...update, dst_token: null });
    expect(updated.info).toMatchObject({ mode: "paused" });

    expect((await api("PATCH", `/replications/${name}/mode`, json({ mode: "disabled" }))).status).toBe(200);
    const disabled = await full(name);
    expect([disabled.info.mode, disabled.settings.mode, disabled.info.is_active]).toEqual(["disabled", "disabled", false]);

    expect((await api("DELETE", `/replications/${name}`)).status).toBe(200);
    await expectError(await api("GET", `/replications/${name}`), 404, `Replication '${name}' does not exist`);
    const after = (await (await api("GET", "/replications")).json()) as { replications: { name: string }[] };
    expect(after.replications.map((item) => item.name)).not.toContain(name);
  });

  it("reads a body sent without a JSON content type, as reduct-js sends it", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("plain");
    const response = await api("POST", `/replications/${name}`, { body: JSON.stringify(settingsFor(src)) });
    expect(response.status).toBe(200);
    expect((await full(name)).settings.src_bucket).toBe(src);
  });

  describe("create and update errors, in ReductStore's order of checks", () => {
    const src = uniqueName("src");
    const taken = uniqueName("taken");
    type Row = [title: string, body: () => unknown, status: number, message: string];

    it.each<Row>([
      [
        "an invalid destination host",
        () => settingsFor(src, { dst_host: "invalid_url" }),
        422,
        "Invalid destination host 'invalid_url'",
      ],
      ["an empty destination host", () => settingsFor(src, { dst_host: "" }), 422, "Invalid destination host ''"],
      [
        "an invalid host before a missing source bucket",
        () => settingsFor("no-such-bucket", { dst_host: "not a url" }),
        422,
        "Invalid destination host 'not a url'",
      ],
      [
        "a missing source bucket",
        () => settingsFor("no-such-bucket"),
        404,
        "Source bucket 'no-such-bucket' for replication 'r1' does not exist",
      ],
      [
        "a missing source bucket before a bad condition",
        () => settingsFor("no-such-bucket", { when: { $bad: [] } }),
        404,
        "Source bucket 'no-such-bucket' for replication 'r1' does not exist",
      ],
      [
        "a source bucket name too long for any bucket",
        () => settingsFor("x".repeat(300)),
        404,
        `Source bucket '${"x".repeat(300)}' for replication 'r1' does not exist`,
      ],
      [
        "its own bucket on this server (localhost, the port it was called on)",
        () => settingsFor(src, { dst_bucket: src, dst_host: "http://localhost" }),
        422,
        "Source and destination buckets must be different",
      ],
      [
        "its own bucket at 127.0.0.1:80",
        () => settingsFor(src, { dst_bucket: src, dst_host: "http://127.0.0.1:80/" }),
        422,
        "Source and destination buckets must be different",
      ],
      [
        "an unknown operator in the condition",
        () => settingsFor(src, { when: { $UNKNOWN_OP: ["&x", "y"] } }),
        422,
        "Invalid replication condition: Operator '$UNKNOWN_OP' not supported",
      ],
      ["a body that is no JSON", () => "{bad", 422, `Invalid JSON: ${jsonError("{bad")}`],
      ["no body", () => undefined, 422, "Invalid JSON: Invalid input: expected object, received undefined"],
      [
        "no src_bucket",
        () => ({ dst_bucket: "b", dst_host: HOST }),
        422,
        "Invalid JSON: src_bucket: Invalid input: expected string, received undefined",
      ],
      [
        "no dst_host",
        () => ({ src_bucket: src, dst_bucket: "b" }),
        422,
        "Invalid JSON: dst_host: Invalid input: expected string, received undefined",
      ],
      [
        "an unknown mode",
        () => settingsFor(src, { mode: "on" }),
        422,
        'Invalid JSON: mode: Invalid option: expected one of "enabled"|"paused"|"disabled"',
      ],
      [
        "an unknown compression",
        () => settingsFor(src, { compression: "lz4" }),
        422,
        'Invalid JSON: compression: Invalid option: expected one of "none"|"gzip"|"zstd"',
      ],
      [
        "a dst_token that cannot be an HTTP header value (CR LF)",
        () => settingsFor(src, { dst_token: "tok\r\nX-Evil: 1" }),
        422,
        "Invalid JSON: dst_token: must not contain control characters (it is sent in a header)",
      ],
      [
        "a dst_bucket that would leave the bucket's path on the target",
        () => settingsFor(src, { dst_bucket: "../tokens" }),
        422,
        "Invalid JSON: dst_bucket: must be a bucket name (letters, digits, '-' and '_')",
      ],
      [
        "a dst_prefix with a query",
        () => settingsFor(src, { dst_prefix: "robot?x=1" }),
        422,
        "Invalid JSON: dst_prefix: must be entry name characters (letters, digits, '-', '_' and '/')",
      ],
      [
        "entries that are no list",
        () => settingsFor(src, { entries: "a" }),
        422,
        "Invalid JSON: entries: Invalid input: expected array, received string",
      ],
    ])("POST (then PUT) with %s", async (_title, body, status, message) => {
      await createBucket(src).catch(() => {});
      const value = body();
      const init = value === undefined ? {} : { body: typeof value === "string" ? value : JSON.stringify(value) };
      await expectError(await api("POST", "/replications/r1", init), status, message);
      await expectError(await api("GET", "/replications/r1"), 404, "Replication 'r1' does not exist");

      // The same checks on update, after the existence check; nothing changes.
      await createBucket(src).catch(() => {});
      await create(taken, settingsFor(src)).catch(() => {});
      const before = await full(taken);
      await expectError(await api("PUT", `/replications/${taken}`, init), status, message.replace("'r1'", `'${taken}'`));
      expect(await full(taken)).toEqual(before);
    });

    it.each([
      ["another port", "http://localhost:8383"],
      ["another host", "https://cloud.example.com"],
    ])("its own bucket name on %s is a valid target", async (_title, host) => {
      await createBucket(src).catch(() => {});
      const name = uniqueName("self");
      await create(name, settingsFor(src, { dst_bucket: src, dst_host: host }));
    });

    it("a taken name is 409 before any other check", async () => {
      await createBucket(src).catch(() => {});
      const name = uniqueName("dup");
      await create(name, settingsFor(src));
      await expectError(
        await api("POST", `/replications/${name}`, json(settingsFor("no-such-bucket", { dst_host: "bad" }))),
        409,
        `Replication '${name}' already exists`,
      );
    });
  });

  it.each([
    ["GET", "/replications/none", 404, "Replication 'none' does not exist", undefined],
    ["DELETE", "/replications/none", 404, "Replication 'none' does not exist", undefined],
    ["PUT", "/replications/none", 404, "Replication 'none' does not exist", { src_bucket: "a", dst_bucket: "b", dst_host: HOST }],
    ["PATCH", "/replications/none/mode", 404, "Replication 'none' does not exist", { mode: "paused" }],
    [
      "PATCH",
      "/replications/none/mode",
      422,
      'Invalid JSON: mode: Invalid option: expected one of "enabled"|"paused"|"disabled"',
      { mode: "stopped" },
    ],
    [
      "PATCH",
      "/replications/none/mode",
      422,
      'Invalid JSON: mode: Invalid option: expected one of "enabled"|"paused"|"disabled"',
      {},
    ],
  ] as const)("%s %s → %i %s", async (method, path, status, message, body) => {
    await expectError(await api(method, path, body === undefined ? {} : json(body)), status, message);
  });

  it("never shows the destination token; an update without one keeps it, one with a token replaces it", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("tok");
    const recording = recordingEnv();
    expect((await recording.call("POST", `/replications/${name}`, settingsFor(src, { dst_token: "secret-1" }))).status).toBe(200);
    expect((await full(name)).settings.dst_token).toBeNull();
    const listed = await (await api("GET", "/replications")).text();
    expect(listed).not.toContain("secret-1");
    expect(await (await api("GET", `/replications/${name}`)).text()).not.toContain("secret-1");

    expect((await recording.call("PUT", `/replications/${name}`, settingsFor(src, { dst_bucket: "b2" }))).status).toBe(200);
    expect((await recording.call("PUT", `/replications/${name}`, settingsFor(src, { dst_token: null }))).status).toBe(200);
    expect((await recording.call("PUT", `/replications/${name}`, settingsFor(src, { dst_token: "secret-2" }))).status).toBe(200);
    const tokens = recording.calls
      .filter((entry) => entry.method === "setReplications")
      .map((entry) => (entry.args[0] as ReplicationSpec[]).find((spec) => spec.name === name)?.settings.dst_token);
    expect(tokens).toEqual(["secret-1", "secret-1", "secret-1", "secret-2"]);
  });

  it("hands the source bucket's object all its replications after every change, the old source too", async () => {
    const first = uniqueName("src");
    const second = uniqueName("src");
    await createBucket(first);
    await createBucket(second);
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    const { call, handed, calls } = recordingEnv();
    expect((await call("POST", `/replications/${a}`, settingsFor(first))).status).toBe(200);
    expect((await call("POST", `/replications/${b}`, settingsFor(first))).status).toBe(200);
    expect((await call("PUT", `/replications/${b}`, settingsFor(second))).status).toBe(200);
    expect((await call("PATCH", `/replications/${a}/mode`, { mode: "paused" })).status).toBe(200);
    expect((await call("DELETE", `/replications/${a}`)).status).toBe(200);
    expect(handed()).toEqual([
      [first, [a]],
      [first, [a, b]],
      [second, [b]],
      [first, [a]],
      [first, [a]],
      [first, []],
    ]);
    const paused = calls.filter((entry) => entry.method === "setReplications")[4]?.args[0] as ReplicationSpec[];
    expect(paused[0]?.settings).toMatchObject({ mode: "paused", src_bucket: first, dst_host: HOST, entries: [] });
  });

  it("a refused create or update hands nothing over", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("keep");
    await create(name, settingsFor(src));
    const { call, handed } = recordingEnv();
    expect((await call("POST", `/replications/${name}`, settingsFor(src))).status).toBe(409);
    expect((await call("PUT", `/replications/${name}`, settingsFor("no-such-bucket"))).status).toBe(404);
    expect(handed()).toEqual([]);
  });

  it("asks each source object once for the status of its replications", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    await create(a, settingsFor(src));
    await create(b, settingsFor(src));
    const { call, calls } = recordingEnv();
    expect((await call("GET", "/replications")).status).toBe(200);
    expect(calls.filter((entry) => entry.bucket === src)).toEqual([{ bucket: src, method: "replicationStatus", args: [[a, b]] }]);
  });

  it("shows a replication idle, with one error line, when its object cannot tell its status", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("idle");
    await create(name, settingsFor(src));
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const { call } = recordingEnv({ failStatus: true });
    const response = await call("GET", `/replications/${name}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { info: unknown; diagnostics: unknown };
    expect(body.info).toEqual({ name, mode: "enabled", is_active: false, is_provisioned: false, pending_records: 0 });
    expect(body.diagnostics).toEqual({ hourly: { ok: 0, errored: 0, errors: {} } });
    const lines = spy.mock.calls.map((args) => String(args[0])).filter((line) => line.includes(src));
    expect(lines).toEqual([
      JSON.stringify({
        level: "ERROR",
        msg: `status of replications of bucket '${src}' unknown: Error: object unreachable`,
      }),
    ]);
  });

  it("keeps a replication whose source bucket is deleted, and hands it to a bucket created with that name", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("kept");
    await create(name, settingsFor(src));
    expect((await api("DELETE", `/b/${src}`)).status).toBe(200);
    expect((await full(name)).info).toMatchObject({ name, is_active: false, pending_records: 0 });
    const list = (await (await api("GET", "/replications")).json()) as { replications: { name: string }[] };
    expect(list.replications.map((item) => item.name)).toContain(name);

    const { call, handed } = recordingEnv();
    expect((await call("POST", `/b/${src}`)).status).toBe(200);
    expect(handed()).toEqual([[src, [name]]]);
  });

  it("a bucket rename moves its replications to the new name, which keeps the replications it had", async () => {
    const [old, kept] = [uniqueName("old"), uniqueName("new")];
    await createBucket(old);
    await createBucket(kept);
    const [onOld, onNew] = [uniqueName("on-old"), uniqueName("on-new")];
    await create(onOld, settingsFor(old));
    await create(onNew, settingsFor(kept));
    expect((await api("DELETE", `/b/${kept}`)).status).toBe(200);

    const { call, handed } = recordingEnv();
    const renamed = await call("PUT", `/b/${old}/rename`, { new_name: kept });
    expect(renamed.status).toBe(200);
    expect(handed()).toEqual([[kept, [onNew, onOld].sort()]]);
    expect((await full(onOld)).settings.src_bucket).toBe(kept);
    expect((await full(onNew)).settings.src_bucket).toBe(kept);
  });

  it("needs full access", async () => {
    const reader = uniqueName("reader");
    const created = await api("POST", `/tokens/${reader}`, json({ full_access: false, read: ["*"], write: ["*"] }));
    const { value } = (await created.json()) as { value: string };
    for (const [method, path] of [
      ["GET", "/replications"],
      ["GET", "/replications/r1"],
      ["POST", "/replications/r1"],
      ["PUT", "/replications/r1"],
      ["PATCH", "/replications/r1/mode"],
      ["DELETE", "/replications/r1"],
    ] as const) {
      await expectError(await api(method, path, { token: value }), 403, `Token '${reader}' doesn't have full access`);
      await expectError(await api(method, path, { token: "wrong" }), 401, "Invalid token");
    }
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return "";
}
