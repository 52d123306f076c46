/**
 * Lifecycle API through the Worker: shapes, defaults, every status code and error string, and
 * provisioned policies refusing changes.
 */
import { describe, expect, it } from "vitest";
import { provisionedLifecycles } from "../../src/api/lifecycle-provisioning";
import { api, apiWithEnv, expectError, TOKEN, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });

function policy(bucket: string, extra: Record<string, unknown> = {}) {
  return { type: "delete", bucket, entries: ["cam-*"], older_than: "30d", interval: "1h", ...extra };
}

describe("lifecycle CRUD", () => {
  it("creates, gets with defaults, lists, updates, sets the mode and deletes", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    expect((await api("POST", `/lifecycles/${name}`, json(policy(bucket)))).status).toBe(200);

    const got = await api("GET", `/lifecycles/${name}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({
      info: {
        name,
        is_provisioned: false,
        is_running: false,
        type: "delete",
        mode: "enabled",
        last_run: null,
        last_run_result: null,
      },
      settings: {
        type: "delete",
        bucket,
        entries: ["cam-*"],
        older_than: "30d",
        interval: "1h",
        processing_interval: "86400s",
        mode: "enabled",
      },
    });

    const list = (await (await api("GET", "/lifecycles")).json()) as { lifecycles: { name: string }[] };
    expect(list.lifecycles.map((item) => item.name)).toContain(name);

    const when = { "&camera": { $eq: "front" } };
    const updated = policy(bucket, { interval: "10m", processing_interval: "2h", when });
    expect((await api("PUT", `/lifecycles/${name}`, json(updated))).status).toBe(200);
    expect((await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "dry_run" }))).status).toBe(200);
    const after = (await (await api("GET", `/lifecycles/${name}`)).json()) as { settings: Record<string, unknown> };
    expect(after.settings).toMatchObject({ interval: "10m", processing_interval: "2h", when, mode: "dry_run" });

    expect((await api("DELETE", `/lifecycles/${name}`)).status).toBe(200);
    await expectError(await api("GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
  });

  it("defaults interval to 3600s and processing_interval to 24 intervals", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, older_than: "2h" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    const got = (await (await api("GET", `/lifecycles/${name}`)).json()) as { settings: Record<string, unknown> };
    expect(got.settings).toMatchObject({ entries: [], interval: "3600s", processing_interval: "86400s", mode: "enabled" });
  });
});

describe("lifecycle errors", () => {
  const cases: {
    title: string;
    body: (bucket: string) => unknown;
    status: number;
    error: (name: string, bucket: string) => string;
  }[] = [
    {
      title: "older_than under 1h",
      body: (b) => policy(b, { older_than: "59m" }),
      status: 422,
      error: () => "Lifecycle older than '59m' is shorter than minimum allowed value of 1h",
    },
    {
      title: "unparsable older_than",
      body: (b) => policy(b, { older_than: "soon" }),
      status: 422,
      error: () => "Invalid lifecycle older than 'soon': [UnprocessableEntity] Invalid duration value: soon",
    },
    {
      title: "interval under 10m",
      body: (b) => policy(b, { interval: "599s" }),
      status: 422,
      error: () => "Lifecycle interval '599s' is shorter than minimum allowed value of 10m",
    },
    {
      title: "unparsable interval",
      body: (b) => policy(b, { interval: "1x" }),
      status: 422,
      error: () => "Invalid lifecycle interval '1x': [UnprocessableEntity] Invalid duration unit: x",
    },
    {
      title: "zero processing_interval",
      body: (b) => policy(b, { processing_interval: "0s" }),
      status: 422,
      error: () => "Lifecycle processing interval '0s' must be positive",
    },
    {
      title: "bad when",
      body: (b) => policy(b, { when: { "&a": { $nope: 1 } } }),
      status: 422,
      error: () => "Invalid lifecycle condition: Operator '$nope' not supported",
    },
    {
      title: "#ext in when",
      body: (b) => policy(b, { when: { "#ext": {} } }),
      status: 422,
      error: () => "Invalid lifecycle condition: Directive '#ext' is not supported: no extensions are installed",
    },
    {
      title: "compress",
      body: (b) => policy(b, { type: "compress" }),
      status: 422,
      error: () => "Lifecycle type 'compress' is not supported by this server: blocks are read per record by ranged requests",
    },
    {
      title: "missing type",
      body: (b) => ({ bucket: b, older_than: "1d" }),
      status: 422,
      error: () => 'Invalid JSON: type: Invalid option: expected one of "delete"|"compress"',
    },
    {
      title: "missing bucket",
      body: () => ({ type: "delete", older_than: "1d", bucket: "no-such-bucket-x" }),
      status: 404,
      error: (n) => `Bucket 'no-such-bucket-x' for lifecycle '${n}' does not exist`,
    },
  ];
  for (const testCase of cases) {
    it(`POST with ${testCase.title} → ${testCase.status}`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const name = uniqueName("policy");
      const response = await api("POST", `/lifecycles/${name}`, json(testCase.body(bucket)));
      await expectError(response, testCase.status, testCase.error(name, bucket));
      await expectError(await api("GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
    });
  }

  it("answers 409 for a second create and 404 for missing policies", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    expect((await api("POST", `/lifecycles/${name}`, json(policy(bucket)))).status).toBe(200);
    await expectError(await api("POST", `/lifecycles/${name}`, json(policy(bucket))), 409, `Lifecycle '${name}' already exists`);
    const missing = uniqueName("missing");
    const message = `Lifecycle '${missing}' does not exist`;
    await expectError(await api("PUT", `/lifecycles/${missing}`, json(policy(bucket))), 404, message);
    await expectError(await api("DELETE", `/lifecycles/${missing}`), 404, message);
    await expectError(await api("PATCH", `/lifecycles/${missing}/mode`, json({ mode: "disabled" })), 404, message);
    await expectError(
      await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "off" })),
      422,
      'Invalid JSON: mode: Invalid option: expected one of "enabled"|"disabled"|"dry_run"',
    );
  });

  it("needs full access", async () => {
    const reader = uniqueName("reader");
    const created = await api("POST", `/tokens/${reader}`, json({ full_access: false, read: ["*"], write: [] }));
    const { value } = (await created.json()) as { value: string };
    await expectError(await api("GET", "/lifecycles", { token: value }), 403, `Token '${reader}' doesn't have full access`);
    await expectError(await api("GET", "/lifecycles", { token: "wrong" }), 401, "Invalid token");
  });
});

describe("provisioned lifecycles", () => {
  const provisioned = (bucket: string) => ({
    RS_LIFECYCLE_A_NAME: "prov-policy",
    RS_LIFECYCLE_A_BUCKET: bucket,
    RS_LIFECYCLE_A_ENTRIES: "cam-1, cam-2",
    RS_LIFECYCLE_A_OLDER_THAN: "7d",
    RS_LIFECYCLE_A_INTERVAL: "1h",
    RS_LIFECYCLE_A_MODE: "dry_run",
  });

  it("reads RS_LIFECYCLE_<ID>_* and skips invalid groups", () => {
    const found = provisionedLifecycles({ ...provisioned("b"), RS_LIFECYCLE_B_NAME: "bad", RS_LIFECYCLE_B_OLDER_THAN: "1m" });
    expect(found).toEqual([
      {
        name: "prov-policy",
        settings: {
          type: "delete",
          bucket: "b",
          entries: ["cam-1", "cam-2"],
          older_than: "7d",
          interval: "1h",
          processing_interval: "86400s",
          mode: "dry_run",
        },
        modeGiven: true,
      },
    ]);
  });

  it("shows is_provisioned and refuses update, mode change and delete with 409", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const call = (method: string, path: string, body?: unknown) =>
      apiWithEnv(provisioned(bucket), method, path, auth, body === undefined ? undefined : JSON.stringify(body));
    const got = (await (await call("GET", "/lifecycles/prov-policy")).json()) as { info: { is_provisioned: boolean } };
    expect(got.info.is_provisioned).toBe(true);
    await expectError(
      await call("PUT", "/lifecycles/prov-policy", policy(bucket)),
      409,
      "Can't update provisioned lifecycle 'prov-policy'",
    );
    await expectError(
      await call("PATCH", "/lifecycles/prov-policy/mode", { mode: "enabled" }),
      409,
      "Can't update provisioned lifecycle 'prov-policy'",
    );
    await expectError(await call("DELETE", "/lifecycles/prov-policy"), 409, "Can't remove provisioned lifecycle 'prov-policy'");
  });
});

describe("lifecycles and bucket rename", () => {
  const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const settingsOf = async (response: Response) =>
    ((await response.json()) as { info: { is_provisioned: boolean }; settings: { bucket: string } }).settings;

  it("GET /lifecycles/:name shows the new bucket name once the rename returns", async () => {
    const bucket = uniqueName();
    const renamed = uniqueName("renamed");
    await createBucket(bucket);
    const name = uniqueName("policy");
    expect((await api("POST", `/lifecycles/${name}`, json(policy(bucket)))).status).toBe(200);
    expect((await api("PUT", `/b/${bucket}/rename`, json({ new_name: renamed }))).status).toBe(200);
    const got = await api("GET", `/lifecycles/${name}`);
    expect(await settingsOf(got)).toEqual({ ...policy(renamed), processing_interval: "86400s", mode: "enabled" });
    // The policy can be changed on its new bucket.
    expect((await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "dry_run" }))).status).toBe(200);
  });

  it("a provisioned bucket with a provisioned policy is not renamed (409) and the policy keeps its bucket", async () => {
    const bucket = uniqueName("prov");
    const variables = {
      RS_BUCKET_A_NAME: bucket,
      RS_LIFECYCLE_A_NAME: `${bucket}-policy`,
      RS_LIFECYCLE_A_BUCKET: bucket,
      RS_LIFECYCLE_A_OLDER_THAN: "7d",
    };
    const call = (method: string, path: string, body?: unknown) =>
      apiWithEnv(variables, method, path, auth, body === undefined ? undefined : JSON.stringify(body));
    expect((await call("GET", `/b/${bucket}`)).status).toBe(200);
    await expectError(
      await call("PUT", `/b/${bucket}/rename`, { new_name: `${bucket}-moved` }),
      409,
      `Can't rename provisioned bucket '${bucket}'`,
    );
    expect((await settingsOf(await call("GET", `/lifecycles/${bucket}-policy`))).bucket).toBe(bucket);
    expect((await call("GET", `/b/${bucket}-moved`)).status).toBe(404);
  });

  it("a provisioned policy on a bucket that is renamed stays with the name the variables give", async () => {
    const bucket = uniqueName();
    const renamed = uniqueName("renamed");
    await createBucket(bucket);
    const variables = { RS_LIFECYCLE_A_NAME: `${bucket}-policy`, RS_LIFECYCLE_A_BUCKET: bucket, RS_LIFECYCLE_A_OLDER_THAN: "7d" };
    const call = (method: string, path: string, body?: unknown) =>
      apiWithEnv(variables, method, path, auth, body === undefined ? undefined : JSON.stringify(body));
    expect((await settingsOf(await call("GET", `/lifecycles/${bucket}-policy`))).bucket).toBe(bucket);
    expect((await call("PUT", `/b/${bucket}/rename`, { new_name: renamed })).status).toBe(200);
    expect((await settingsOf(await call("GET", `/lifecycles/${bucket}-policy`))).bucket).toBe(bucket);
  });
});
