/**
 * Provisioned lifecycle policies (`RS_LIFECYCLE_<ID>_*`) as ReductStore reads them at start: which
 * groups are dropped and with which log line, case-insensitive TYPE and MODE, a kept mode when MODE
 * is absent, the provisioned mark held by the current variables only, one winner per name, and
 * each variable set applied (and logged) once per isolate.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { provisionedLifecycles } from "../../src/api/lifecycle-provisioning";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { api, apiWithEnv, expectError, TOKEN, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

function call(variables: Record<string, string>, method: string, path: string, body?: unknown) {
  return apiWithEnv(variables, method, path, auth, body === undefined ? undefined : JSON.stringify(body));
}

async function info(variables: Record<string, string>, name: string) {
  const response = await call(variables, "GET", `/lifecycles/${name}`);
  expect(response.status).toBe(200);
  return (await response.json()) as {
    info: { is_provisioned: boolean; mode: string };
    settings: Record<string, unknown>;
  };
}

/** A variable that only makes the set differ, as a restart with other variables would. */
const restart = () => ({ [`RS_LIFECYCLE_${uniqueName("Z").replace(/\W/g, "_")}_UNUSED`]: "x" });

function errorLines(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.map((args) => String(args[0]));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("RS_LIFECYCLE_<ID>_* groups", () => {
  const base = { RS_LIFECYCLE_A_NAME: "p", RS_LIFECYCLE_A_BUCKET: "b", RS_LIFECYCLE_A_OLDER_THAN: "7d" };

  it.each([
    ["no BUCKET", { RS_LIFECYCLE_A_BUCKET: undefined }, "Lifecycle 'p' has no bucket. Drop it."],
    ["an empty BUCKET", { RS_LIFECYCLE_A_BUCKET: "" }, "Lifecycle 'p' has no bucket. Drop it."],
    ["no OLDER_THAN", { RS_LIFECYCLE_A_OLDER_THAN: undefined }, "Lifecycle 'p' has no older than. Drop it."],
    ["TYPE archive", { RS_LIFECYCLE_A_TYPE: "archive" }, "Lifecycle 'p' has invalid type 'archive'. Drop it."],
    ["TYPE compress", { RS_LIFECYCLE_A_TYPE: "compress" }, "Lifecycle 'p' has invalid type 'compress'. Drop it."],
    ["MODE paused", { RS_LIFECYCLE_A_MODE: "paused" }, "Lifecycle 'p' has invalid mode 'paused'. Drop it."],
    [
      "WHEN that is no JSON",
      { RS_LIFECYCLE_A_WHEN: '{"&a":' },
      `Lifecycle 'p' has invalid when condition: ${jsonError('{"&a":')}. Drop it.`,
    ],
    [
      "OLDER_THAN under 1h",
      { RS_LIFECYCLE_A_OLDER_THAN: "1m" },
      "Failed to provision lifecycle 'p': Lifecycle older than '1m' is shorter than minimum allowed value of 1h",
    ],
  ])("a group with %s is dropped with one error line", (_title, change, line) => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const variables = Object.fromEntries(
      Object.entries({ ...base, ...change }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    expect(provisionedLifecycles(variables)).toEqual([]);
    expect(errorLines(spy)).toEqual([JSON.stringify({ level: "ERROR", msg: line })]);
  });

  it.each([
    ["DELETE", "DRY_RUN", "dry_run"],
    ["Delete", "Disabled", "disabled"],
    ["delete", "ENABLED", "enabled"],
  ])("TYPE %s and MODE %s are read case-insensitively", (type, mode, expected) => {
    const found = provisionedLifecycles({ ...base, RS_LIFECYCLE_A_TYPE: type, RS_LIFECYCLE_A_MODE: mode });
    expect(found.map((item) => [item.settings.type, item.settings.mode, item.modeGiven])).toEqual([["delete", expected, true]]);
  });

  it("without MODE the group gives no mode of its own", () => {
    const [found] = provisionedLifecycles(base);
    expect(found?.modeGiven).toBe(false);
  });

  it("two groups with one NAME: the last by variable name wins, logged once", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const found = provisionedLifecycles({
      RS_LIFECYCLE_A1_NAME: "dup",
      RS_LIFECYCLE_A1_BUCKET: "first",
      RS_LIFECYCLE_A1_OLDER_THAN: "1h",
      RS_LIFECYCLE_A2_NAME: "dup",
      RS_LIFECYCLE_A2_BUCKET: "second",
      RS_LIFECYCLE_A2_OLDER_THAN: "2h",
    });
    expect(found.map((item) => [item.name, item.settings.bucket, item.settings.older_than])).toEqual([["dup", "second", "2h"]]);
    expect(errorLines(spy)).toEqual([
      JSON.stringify({
        level: "ERROR",
        msg: "Lifecycle 'dup' is provisioned by RS_LIFECYCLE_A1_* and RS_LIFECYCLE_A2_*: RS_LIFECYCLE_A2_* is used",
      }),
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

describe("provisioning through the API", () => {
  it("logs an invalid group once per isolate, not on every lifecycle request", async () => {
    const name = uniqueName("nobkt");
    const variables = { ...restart(), RS_LIFECYCLE_L7_NAME: name, RS_LIFECYCLE_L7_OLDER_THAN: "1h" };
    const spy = vi.spyOn(console, "error");
    for (let i = 0; i < 5; i++) {
      const response = await call(variables, "GET", "/lifecycles");
      expect(response.status).toBe(200);
      const { lifecycles } = (await response.json()) as { lifecycles: { name: string }[] };
      expect(lifecycles.map((item) => item.name)).not.toContain(name);
    }
    expect(errorLines(spy).filter((line) => line.includes(name))).toEqual([
      JSON.stringify({ level: "ERROR", msg: `Lifecycle '${name}' has no bucket. Drop it.` }),
    ]);
  });

  it("a group on a bucket that does not exist is logged once and not created, as in ReductStore", async () => {
    const bucket = uniqueName("absent");
    const name = uniqueName("nobucket");
    const variables = { ...restart(), RS_LIFECYCLE_M_NAME: name, RS_LIFECYCLE_M_BUCKET: bucket, RS_LIFECYCLE_M_OLDER_THAN: "1h" };
    const spy = vi.spyOn(console, "error");
    for (let i = 0; i < 3; i++) {
      const response = await call(variables, "GET", "/lifecycles");
      expect(response.status).toBe(200);
      const { lifecycles } = (await response.json()) as { lifecycles: { name: string }[] };
      expect(lifecycles.map((item) => item.name)).not.toContain(name);
    }
    await expectError(await call(variables, "GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
    expect(errorLines(spy).filter((line) => line.includes(name))).toEqual([
      JSON.stringify({
        level: "ERROR",
        msg: `Failed to provision lifecycle '${name}': Bucket '${bucket}' for lifecycle '${name}' does not exist`,
      }),
    ]);
  });

  it("a provisioned policy whose bucket is gone at the next start is no longer provisioned: DELETE → 200", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("gone");
    const group = { RS_LIFECYCLE_G_NAME: name, RS_LIFECYCLE_G_BUCKET: bucket, RS_LIFECYCLE_G_OLDER_THAN: "1h" };
    expect((await info({ ...restart(), ...group }, name)).info.is_provisioned).toBe(true);
    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    const later = { ...restart(), ...group };
    expect((await info(later, name)).info.is_provisioned).toBe(false);
    expect((await call(later, "DELETE", `/lifecycles/${name}`)).status).toBe(200);
  });

  it("keeps the existing mode when MODE is absent after a restart", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("entl");
    const group = { RS_LIFECYCLE_L9_NAME: name, RS_LIFECYCLE_L9_BUCKET: bucket, RS_LIFECYCLE_L9_OLDER_THAN: "1h" };
    const first = { ...restart(), ...group, RS_LIFECYCLE_L9_MODE: "dry_run" };
    expect((await info(first, name)).info.mode).toBe("dry_run");

    const second = { ...restart(), ...group };
    const after = await info(second, name);
    expect(after.info).toMatchObject({ is_provisioned: true, mode: "dry_run" });
    expect(after.settings.mode).toBe("dry_run");

    const third = { ...restart(), ...group, RS_LIFECYCLE_L9_MODE: "enabled" };
    expect((await info(third, name)).info.mode).toBe("enabled");
  });

  it("keeps the mode of a policy made through the API that a group takes over without MODE", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("taken");
    const body = { type: "delete", bucket, older_than: "2h", interval: "1h", mode: "disabled" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    const group = { ...restart(), RS_LIFECYCLE_T_NAME: name, RS_LIFECYCLE_T_BUCKET: bucket, RS_LIFECYCLE_T_OLDER_THAN: "1h" };
    const got = await info(group, name);
    expect(got.info).toMatchObject({ is_provisioned: true, mode: "disabled" });
    expect(got.settings.older_than).toBe("1h");
  });

  it("a policy whose group is removed is an ordinary one after the restart: DELETE → 200", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("ok1");
    const group = { ...restart(), RS_LIFECYCLE_K_NAME: name, RS_LIFECYCLE_K_BUCKET: bucket, RS_LIFECYCLE_K_OLDER_THAN: "1h" };
    expect((await info(group, name)).info.is_provisioned).toBe(true);
    await expectError(await call(group, "DELETE", `/lifecycles/${name}`), 409, `Can't remove provisioned lifecycle '${name}'`);

    const without = restart();
    const got = await info(without, name);
    expect(got.info.is_provisioned).toBe(false);
    expect(got.settings).toMatchObject({ bucket, older_than: "1h" });
    expect((await call(without, "DELETE", `/lifecycles/${name}`)).status).toBe(200);
    await expectError(await call(without, "GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
  });

  it("a policy an older version provisioned on bucket '' is released and can be deleted", async () => {
    const name = uniqueName("nobkt");
    const settings = { type: "delete", bucket: "", entries: [], older_than: "1h", interval: "3600s", mode: "enabled" };
    await env.DB.prepare("INSERT INTO lifecycles (name, bucket, settings, is_provisioned) VALUES (?1, '', ?2, 1)")
      .bind(name, JSON.stringify({ ...settings, processing_interval: "86400s" }))
      .run();
    const variables = { ...restart(), RS_LIFECYCLE_L7_NAME: name, RS_LIFECYCLE_L7_OLDER_THAN: "1h" };
    expect((await info(variables, name)).info.is_provisioned).toBe(false);
    expect((await call(variables, "DELETE", `/lifecycles/${name}`)).status).toBe(200);
    await expectError(await call(variables, "GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
  });

  it("two groups with one NAME settle on one policy: requests neither rewrite it nor re-run it", async () => {
    const first = uniqueName();
    const second = uniqueName();
    await createBucket(first);
    await createBucket(second);
    const name = uniqueName("dup");
    const variables = {
      ...restart(),
      RS_LIFECYCLE_A1_NAME: name,
      RS_LIFECYCLE_A1_BUCKET: first,
      RS_LIFECYCLE_A1_OLDER_THAN: "1h",
      RS_LIFECYCLE_A2_NAME: name,
      RS_LIFECYCLE_A2_BUCKET: second,
      RS_LIFECYCLE_A2_OLDER_THAN: "2h",
    };
    const got = await info(variables, name);
    expect(got.settings).toMatchObject({ bucket: second, older_than: "2h" });
    // The policy runs once (nothing to do) and waits for its interval.
    await runDurableObjectAlarm(stubOf(second));
    const nextRun = () =>
      runInDurableObject(
        stubOf(second),
        (_instance, state) =>
          state.storage.sql.exec<{ at: number }>("SELECT next_run_at_ms AS at FROM lifecycle_policies").one().at,
      );
    const scheduled = await nextRun();
    expect(scheduled).toBeGreaterThan(Date.now() + 60_000);
    for (let i = 0; i < 3; i++) expect((await call(variables, "GET", "/lifecycles")).status).toBe(200);
    expect(await nextRun()).toBe(scheduled);
    const policiesOfFirst = await runInDurableObject(
      stubOf(first),
      (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM lifecycle_policies").one().n,
    );
    expect(policiesOfFirst).toBe(0);
  });
});
