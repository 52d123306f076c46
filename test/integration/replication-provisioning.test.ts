/**
 * Provisioned replications (`RS_REPLICATION_<ID>_*`) as ReductStore reads them at start: which
 * groups are dropped and with which log line, case-insensitive MODE and COMPRESSION, EACH_N and
 * EACH_S folded into the condition, a kept mode and token when MODE or DST_TOKEN is absent, 409 on
 * change and delete (not on mode), the provisioned mark held by the current variables only, and
 * each variable set applied (and logged) once per isolate.
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { provisionedReplications } from "../../src/api/replication-provisioning";
import { apiWithEnv, expectError, TOKEN, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";
import { recordingEnv } from "../helpers/replication-calls";

const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

function call(variables: Record<string, string>, method: string, path: string, body?: unknown) {
  return apiWithEnv(variables, method, path, auth, body === undefined ? undefined : JSON.stringify(body));
}

async function full(variables: Record<string, string>, name: string) {
  const response = await call(variables, "GET", `/replications/${name}`);
  expect(response.status).toBe(200);
  return (await response.json()) as {
    info: { is_provisioned: boolean; mode: string };
    settings: Record<string, unknown>;
  };
}

/** A variable that only makes the set differ, as a restart with other variables would. */
const restart = () => ({ [`RS_REPLICATION_${uniqueName("Z").replace(/\W/g, "_")}_UNUSED`]: "x" });

function errorLines(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.map((args) => String(args[0]));
}

const line = (msg: string, level = "ERROR") => JSON.stringify({ level, msg });

afterEach(() => {
  vi.restoreAllMocks();
});

describe("RS_REPLICATION_<ID>_* groups", () => {
  const base = {
    RS_REPLICATION_A_NAME: "r",
    RS_REPLICATION_A_SRC_BUCKET: "src",
    RS_REPLICATION_A_DST_BUCKET: "dst",
    RS_REPLICATION_A_DST_HOST: "https://cloud.example.com",
  };

  it.each([
    ["no SRC_BUCKET", { RS_REPLICATION_A_SRC_BUCKET: undefined }, "Replication 'r' has no source bucket. Drop it."],
    ["an empty SRC_BUCKET", { RS_REPLICATION_A_SRC_BUCKET: "" }, "Replication 'r' has no source bucket. Drop it."],
    ["no DST_BUCKET", { RS_REPLICATION_A_DST_BUCKET: undefined }, "Replication 'r' has no destination bucket. Drop it."],
    ["no DST_HOST", { RS_REPLICATION_A_DST_HOST: undefined }, "Replication 'r' has no remote host. Drop it."],
    [
      "a DST_HOST without a scheme",
      { RS_REPLICATION_A_DST_HOST: "invalid-url" },
      "Replication 'r' has invalid remote host: relative URL without a base. Drop it.",
    ],
    [
      "a DST_HOST that is no URL",
      { RS_REPLICATION_A_DST_HOST: "http://exa mple.com" },
      "Replication 'r' has invalid remote host: invalid URL. Drop it.",
    ],
    [
      "WHEN that is no JSON",
      { RS_REPLICATION_A_WHEN: '{"&a":' },
      `Replication 'r' has invalid when condition: ${jsonError('{"&a":')}. Drop it.`,
    ],
    ["MODE on", { RS_REPLICATION_A_MODE: "on" }, "Replication 'r' has invalid mode 'on'. Drop it."],
    ["COMPRESSION lz4", { RS_REPLICATION_A_COMPRESSION: "lz4" }, "Replication 'r' has invalid compression 'lz4'. Drop it."],
    ["EACH_N 0", { RS_REPLICATION_A_EACH_N: "0" }, "Replication 'r' has invalid each n '0'. Drop it."],
    ["EACH_N 1.5", { RS_REPLICATION_A_EACH_N: "1.5" }, "Replication 'r' has invalid each n '1.5'. Drop it."],
    ["EACH_S often", { RS_REPLICATION_A_EACH_S: "often" }, "Replication 'r' has invalid each s 'often'. Drop it."],
    [
      "INCLUDE_<label>",
      { RS_REPLICATION_A_INCLUDE_kind: "a" },
      "Replication 'r' uses RS_REPLICATION_A_INCLUDE_* or _EXCLUDE_*, which are not supported: use RS_REPLICATION_A_WHEN. Drop it.",
    ],
    [
      "EXCLUDE_<label>",
      { RS_REPLICATION_A_EXCLUDE_kind: "b" },
      "Replication 'r' uses RS_REPLICATION_A_INCLUDE_* or _EXCLUDE_*, which are not supported: use RS_REPLICATION_A_WHEN. Drop it.",
    ],
    [
      "DST_BUCKET ../x (it goes into the target's URL)",
      { RS_REPLICATION_A_DST_BUCKET: "../x" },
      "Failed to provision replication 'r': Invalid JSON: dst_bucket: must be a bucket name (letters, digits, '-' and '_'). Drop it.",
    ],
    [
      "DST_PREFIX ../../tokens/",
      { RS_REPLICATION_A_DST_PREFIX: "../../tokens/" },
      "Failed to provision replication 'r': Invalid JSON: dst_prefix: must be entry name characters (letters, digits, '-', '_' and '/'). Drop it.",
    ],
    [
      "a DST_TOKEN with a line break",
      { RS_REPLICATION_A_DST_TOKEN: "tok\nen" },
      "Failed to provision replication 'r': Invalid JSON: dst_token: must not contain control characters (it is sent in a header). Drop it.",
    ],
  ])("a group with %s is dropped with one error line", (_title, change, message) => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const variables = Object.fromEntries(
      Object.entries({ ...base, ...change }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    expect(provisionedReplications(variables)).toEqual([]);
    expect(errorLines(spy)).toEqual([line(message)]);
  });

  it("reads every field; the host as a URL writes it, ENTRIES split at commas as given", () => {
    const [found] = provisionedReplications({
      ...base,
      RS_REPLICATION_A_DST_HOST: "https://cloud.example.com",
      RS_REPLICATION_A_DST_TOKEN: "secret",
      RS_REPLICATION_A_ENTRIES: "cam/*,!cam/raw, imu",
      RS_REPLICATION_A_DST_PREFIX: "robot-1/",
      RS_REPLICATION_A_WHEN: '{"&score": {"$gt": 1}}',
      RS_REPLICATION_A_MODE: "Paused",
      RS_REPLICATION_A_COMPRESSION: "ZSTD",
    });
    expect(found).toEqual({
      name: "r",
      modeGiven: true,
      settings: {
        src_bucket: "src",
        dst_bucket: "dst",
        dst_host: "https://cloud.example.com/",
        dst_token: "secret",
        entries: ["cam/*", "!cam/raw", " imu"],
        dst_prefix: "robot-1/",
        when: { "&score": { $gt: 1 } },
        mode: "paused",
        compression: "zstd",
      },
    });
  });

  it.each([
    ["defaults", {}, { entries: [], dst_prefix: "", mode: "enabled", compression: "none" }, false],
    ["EACH_N alone", { RS_REPLICATION_A_EACH_N: "10" }, { when: { $each_n: 10 } }, false],
    ["EACH_S alone", { RS_REPLICATION_A_EACH_S: "0.5" }, { when: { $each_t: 0.5 } }, false],
    [
      "EACH_N and EACH_S added to WHEN",
      { RS_REPLICATION_A_WHEN: '{"$and": [true, false]}', RS_REPLICATION_A_EACH_N: "2", RS_REPLICATION_A_EACH_S: "3" },
      { when: { $and: [true, false], $each_n: 2, $each_t: 3 } },
      false,
    ],
    ["MODE disabled", { RS_REPLICATION_A_MODE: "DISABLED" }, { mode: "disabled" }, true],
    ["COMPRESSION Gzip", { RS_REPLICATION_A_COMPRESSION: "Gzip" }, { compression: "gzip" }, false],
  ])("%s", (_title, change, expected, modeGiven) => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const [found] = provisionedReplications({ ...base, ...change });
    expect(found?.settings).toMatchObject(expected);
    expect(found?.modeGiven).toBe(modeGiven);
    if (!("RS_REPLICATION_A_DST_TOKEN" in change)) expect(found?.settings).not.toHaveProperty("dst_token");
  });

  it("EACH_S logs ReductStore's deprecation line", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    provisionedReplications({ ...base, RS_REPLICATION_A_EACH_S: "1.5" });
    expect(errorLines(spy)).toEqual([
      line(
        "The 'RS_REPLICATION_A_EACH_S' environment variable is deprecated and will be migrated to 'when' condition using $each_t operator. Value: 1.5",
        "WARN",
      ),
    ]);
  });

  it("two groups with one NAME: the last by variable name wins, logged once", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const found = provisionedReplications({
      ...base,
      RS_REPLICATION_B_NAME: "r",
      RS_REPLICATION_B_SRC_BUCKET: "second",
      RS_REPLICATION_B_DST_BUCKET: "dst",
      RS_REPLICATION_B_DST_HOST: "https://cloud.example.com",
    });
    expect(found.map((item) => [item.name, item.settings.src_bucket])).toEqual([["r", "second"]]);
    expect(errorLines(spy)).toEqual([
      line("Replication 'r' is provisioned by RS_REPLICATION_A_* and RS_REPLICATION_B_*: RS_REPLICATION_B_* is used"),
    ]);
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

function group(id: string, name: string, src: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    [`RS_REPLICATION_${id}_NAME`]: name,
    [`RS_REPLICATION_${id}_SRC_BUCKET`]: src,
    [`RS_REPLICATION_${id}_DST_BUCKET`]: "remote",
    [`RS_REPLICATION_${id}_DST_HOST`]: "http://127.0.0.1:9",
    ...Object.fromEntries(Object.entries(extra).map(([field, value]) => [`RS_REPLICATION_${id}_${field}`, value])),
  };
}

describe("provisioning through the API", () => {
  it("a provisioned replication is listed as such; update and delete are 409, its mode may change", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("prov");
    const variables = { ...restart(), ...group("P1", name, src, { DST_TOKEN: "secret" }) };
    const got = await full(variables, name);
    expect(got.info.is_provisioned).toBe(true);
    expect(got.settings).toMatchObject({ src_bucket: src, dst_host: "http://127.0.0.1:9/", dst_token: null });

    const body = { src_bucket: src, dst_bucket: "x", dst_host: "https://a.example.com" };
    await expectError(
      await call(variables, "PUT", `/replications/${name}`, body),
      409,
      `Can't update provisioned replication '${name}'`,
    );
    await expectError(
      await call(variables, "DELETE", `/replications/${name}`),
      409,
      `Can't remove provisioned replication '${name}'`,
    );
    await expectError(await call(variables, "POST", `/replications/${name}`, body), 409, `Replication '${name}' already exists`);
    expect((await call(variables, "PATCH", `/replications/${name}/mode`, { mode: "paused" })).status).toBe(200);
    expect((await full(variables, name)).info).toMatchObject({ is_provisioned: true, mode: "paused" });
  });

  it("hands the source objects what the variables provision, the old source too, and not again per request", async () => {
    const [first, second] = [uniqueName("src"), uniqueName("src")];
    await createBucket(first);
    await createBucket(second);
    const name = uniqueName("moved");
    const one = recordingEnv({ variables: { ...restart(), ...group("H", name, first) } });
    expect((await one.call("GET", "/replications")).status).toBe(200);
    expect((await one.call("GET", "/replications")).status).toBe(200);
    expect(one.handed()).toEqual([[first, [name]]]);

    const two = recordingEnv({ variables: { ...restart(), ...group("H", name, second) } });
    expect((await two.call("GET", `/replications/${name}`)).status).toBe(200);
    expect(two.handed()).toEqual([
      [second, [name]],
      [first, []],
    ]);
  });

  it("a provisioned bucket gets the replications of its name", async () => {
    const bucket = uniqueName("pb");
    await createBucket(bucket);
    const name = uniqueName("onpb");
    expect(
      (
        await call(restart(), "POST", `/replications/${name}`, {
          src_bucket: bucket,
          dst_bucket: "r",
          dst_host: "http://127.0.0.1:9",
        })
      ).status,
    ).toBe(200);
    const { call: recorded, handed } = recordingEnv({ variables: { RS_BUCKET_PB_NAME: bucket } });
    expect((await recorded("GET", "/info")).status).toBe(200);
    expect(handed()).toEqual([[bucket, [name]]]);
  });

  it("keeps the mode and the token it has when MODE or DST_TOKEN is absent after a restart", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("keep");
    const first = { ...restart(), ...group("K", name, src, { MODE: "disabled", DST_TOKEN: "t1" }) };
    expect((await full(first, name)).info.mode).toBe("disabled");

    const second = { ...restart(), ...group("K", name, src, { DST_BUCKET: "changed" }) };
    const after = await full(second, name);
    expect(after.info).toMatchObject({ is_provisioned: true, mode: "disabled" });
    expect(after.settings).toMatchObject({ dst_bucket: "changed", mode: "disabled" });
    const stored = await readSettings(name);
    expect(stored.dst_token).toBe("t1");

    const third = { ...restart(), ...group("K", name, src, { MODE: "enabled" }) };
    expect((await full(third, name)).info.mode).toBe("enabled");
  });

  it("settings the API would refuse are skipped with one error line, once per isolate", async () => {
    const name = uniqueName("nosrc");
    const missing = uniqueName("missing");
    const variables = { ...restart(), ...group("M", name, missing) };
    const spy = vi.spyOn(console, "error");
    for (let i = 0; i < 3; i++) {
      const response = await call(variables, "GET", "/replications");
      expect(response.status).toBe(200);
      const { replications } = (await response.json()) as { replications: { name: string }[] };
      expect(replications.map((item) => item.name)).not.toContain(name);
    }
    expect(errorLines(spy).filter((text) => text.includes(name))).toEqual([
      line(`Failed to provision replication '${name}': Source bucket '${missing}' for replication '${name}' does not exist`),
    ]);
  });

  it("a replication whose group is removed is an ordinary one after the restart: DELETE → 200", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("rel");
    const variables = { ...restart(), ...group("R", name, src) };
    expect((await full(variables, name)).info.is_provisioned).toBe(true);

    const without = restart();
    const got = await full(without, name);
    expect(got.info.is_provisioned).toBe(false);
    expect(got.settings).toMatchObject({ src_bucket: src, dst_bucket: "remote" });
    expect((await call(without, "DELETE", `/replications/${name}`)).status).toBe(200);
    await expectError(await call(without, "GET", `/replications/${name}`), 404, `Replication '${name}' does not exist`);
  });

  it("takes over a replication made through the API, keeping its mode and token", async () => {
    const src = uniqueName("src");
    await createBucket(src);
    const name = uniqueName("taken");
    const before = restart();
    const body = {
      src_bucket: src,
      dst_bucket: "remote",
      dst_host: "http://127.0.0.1:9",
      dst_token: "api-token",
      mode: "paused",
    };
    expect((await call(before, "POST", `/replications/${name}`, body)).status).toBe(200);
    const variables = { ...restart(), ...group("T", name, src, { DST_PREFIX: "p/" }) };
    const got = await full(variables, name);
    expect(got.info).toMatchObject({ is_provisioned: true, mode: "paused" });
    expect(got.settings.dst_prefix).toBe("p/");
    expect((await readSettings(name)).dst_token).toBe("api-token");
  });
});

/** The stored settings (the API never shows the token), read from D1 directly. */
async function readSettings(name: string): Promise<Record<string, unknown>> {
  const row = await env.DB.prepare("SELECT settings FROM replications WHERE name = ?1").bind(name).first<{ settings: string }>();
  return JSON.parse(row?.settings ?? "{}") as Record<string, unknown>;
}
