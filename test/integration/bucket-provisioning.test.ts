/**
 * Buckets from RS_BUCKET_<ID>_*: created at an isolate's first API request with is_provisioned,
 * settings from the environment (sizes with units), existing buckets taken over, API changes
 * refused with 409, invalid groups skipped. Table-driven over statuses and error strings.
 */
import { describe, expect, it, vi } from "vitest";
import { provisionedBuckets } from "../../src/api/bucket-provisioning";
import { apiWithEnv, expectError, TOKEN, uniqueName } from "../helpers/http";

const auth = { authorization: `Bearer ${TOKEN}` };
const DEFAULTS = { max_block_size: 64_000_000, max_block_records: 1024, quota_type: "NONE" as const, quota_size: 0 };

function groups(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { RS_BUCKET_A_NAME: name, ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`RS_BUCKET_A_${k}`, v])) };
}

describe("provisionedBuckets (parsing)", () => {
  it("reads every group with defaults, units and case-insensitive quota types", () => {
    expect(
      provisionedBuckets(
        {
          RS_BUCKET_A_NAME: "alpha",
          RS_BUCKET_B_NAME: "beta",
          RS_BUCKET_B_QUOTA_TYPE: "fifo",
          RS_BUCKET_B_QUOTA_SIZE: "1GB",
          RS_BUCKET_B_MAX_BLOCK_SIZE: "32MB",
          RS_BUCKET_B_MAX_BLOCK_RECORDS: "100",
        },
        DEFAULTS,
      ),
    ).toEqual([
      { name: "alpha", settings: DEFAULTS },
      {
        name: "beta",
        settings: { max_block_size: 32_000_000, max_block_records: 100, quota_type: "FIFO", quota_size: 1_000_000_000 },
      },
    ]);
  });

  it.each([
    ["a bad name", { RS_BUCKET_X_NAME: "no spaces" }, "Bucket or entry name can contain only letters, digests and [-,_] symbols"],
    [
      "a bad size",
      { RS_BUCKET_X_NAME: "x", RS_BUCKET_X_QUOTA_SIZE: "lots" },
      "Invalid value of RS_BUCKET_X_QUOTA_SIZE: 'lots' is not a size",
    ],
    [
      "a bad record count",
      { RS_BUCKET_X_NAME: "x", RS_BUCKET_X_MAX_BLOCK_RECORDS: "1.5" },
      "Invalid value of RS_BUCKET_X_MAX_BLOCK_RECORDS: '1.5' is not a number",
    ],
    ["a bad quota type", { RS_BUCKET_X_NAME: "x", RS_BUCKET_X_QUOTA_TYPE: "SOME" }, /^Invalid settings: quota_type/],
  ] as const)("skips a group with %s, with an error log", (_what, env, message) => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      expect(provisionedBuckets(env, DEFAULTS)).toEqual([]);
      const logged = String(errors.mock.calls[0]?.[0]);
      const { msg } = JSON.parse(logged) as { msg: string };
      const reason = msg.replace(/^Failed to provision bucket '[^']*': /, "");
      if (typeof message === "string") expect(reason).toBe(message);
      else expect(reason).toMatch(message);
    } finally {
      errors.mockRestore();
    }
  });
});

describe("two groups naming one bucket", () => {
  it("the last by variable name is used, with one error line", () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      expect(
        provisionedBuckets(
          {
            RS_BUCKET_D1_NAME: "dup",
            RS_BUCKET_D1_QUOTA_TYPE: "FIFO",
            RS_BUCKET_D1_QUOTA_SIZE: "1MB",
            RS_BUCKET_D2_NAME: "dup",
            RS_BUCKET_D2_QUOTA_TYPE: "HARD",
            RS_BUCKET_D2_QUOTA_SIZE: "3MB",
          },
          DEFAULTS,
        ),
      ).toEqual([{ name: "dup", settings: { ...DEFAULTS, quota_type: "HARD", quota_size: 3_000_000 } }]);
      expect(errors.mock.calls.map((call) => JSON.parse(String(call[0])) as unknown)).toEqual([
        { level: "ERROR", msg: "Bucket 'dup' is provisioned by RS_BUCKET_D1_* and RS_BUCKET_D2_*: RS_BUCKET_D2_* is used" },
      ]);
    } finally {
      errors.mockRestore();
    }
  });
});

describe("provisioned buckets through the Worker", () => {
  it("exist before the first answer, provisioned, with the environment's settings", async () => {
    const name = uniqueName("prov");
    const env = groups(name, { QUOTA_TYPE: "FIFO", QUOTA_SIZE: "10MB" });
    const response = await apiWithEnv(env, "GET", `/b/${name}`, auth);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { info: { is_provisioned: boolean }; settings: Record<string, unknown> };
    expect(body.info.is_provisioned).toBe(true);
    expect(body.settings).toEqual({ ...DEFAULTS, quota_type: "FIFO", quota_size: 10_000_000 });
  });

  it.each([
    ["PUT", "/b/{n}", '{"quota_type": "NONE"}', 409, "Can't change settings of provisioned bucket '{n}'"],
    ["DELETE", "/b/{n}", undefined, 409, "Can't remove provisioned bucket '{n}'"],
    ["PUT", "/b/{n}/rename", '{"new_name": "{n}-moved"}', 409, "Can't rename provisioned bucket '{n}'"],
    ["POST", "/b/{n}", undefined, 409, "Bucket '{n}' already exists"],
  ] as const)("%s %s → %i", async (method, template, body, status, message) => {
    const name = uniqueName("prov");
    const fill = (text: string) => text.replaceAll("{n}", name);
    const headers = { ...auth, "content-type": "application/json" };
    const response = await apiWithEnv(groups(name), method, fill(template), headers, body === undefined ? undefined : fill(body));
    await expectError(response, status, fill(message));
    const after = await apiWithEnv(groups(name), "GET", `/b/${name}`, auth);
    expect(((await after.json()) as { settings: unknown }).settings).toEqual(DEFAULTS);
  });

  it("an invalid group is logged once per isolate, not on every request", async () => {
    const name = uniqueName("prov");
    const env = { RS_BUCKET_A_NAME: name, RS_BUCKET_A_QUOTA_SIZE: "lots" };
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (let i = 0; i < 3; i++) {
        const response = await apiWithEnv(env, "GET", `/b/${name}`, auth);
        await expectError(response, 404, `Bucket '${name}' is not found`);
      }
      const logged = errors.mock.calls.map(([line]) => String(line)).filter((line) => line.includes(`'${name}'`));
      expect(logged).toHaveLength(1);
    } finally {
      errors.mockRestore();
    }
  });

  it("takes over a bucket made through the API, and new settings apply to it on the next start", async () => {
    const name = uniqueName("prov");
    const created = await apiWithEnv(
      {},
      "POST",
      `/b/${name}`,
      { ...auth, "content-type": "application/json" },
      '{"quota_type": "HARD", "quota_size": 5}',
    );
    expect(created.status).toBe(200);
    await created.arrayBuffer();
    const first = await apiWithEnv(groups(name, { MAX_BLOCK_RECORDS: "10" }), "GET", `/b/${name}`, auth);
    const firstBody = (await first.json()) as { info: { is_provisioned: boolean }; settings: Record<string, unknown> };
    expect(firstBody.info.is_provisioned).toBe(true);
    expect(firstBody.settings).toEqual({ ...DEFAULTS, max_block_records: 10 });
    // Another environment (a restart or deploy with changed variables) applies its settings.
    const second = await apiWithEnv(groups(name, { MAX_BLOCK_RECORDS: "20" }), "GET", `/b/${name}`, auth);
    expect(((await second.json()) as { settings: Record<string, unknown> }).settings).toEqual({
      ...DEFAULTS,
      max_block_records: 20,
    });
  });
  it("a bucket whose group is gone from the environment is no longer provisioned: the API may change and delete it", async () => {
    const name = uniqueName("prov");
    const provisioned = await apiWithEnv(groups(name), "GET", `/b/${name}`, auth);
    expect(((await provisioned.json()) as { info: { is_provisioned: boolean } }).info.is_provisioned).toBe(true);
    // A restart or deploy without the group.
    const after = await apiWithEnv({ RS_BUCKET_B_NAME: uniqueName("other") }, "GET", `/b/${name}`, auth);
    expect(((await after.json()) as { info: { is_provisioned: boolean } }).info.is_provisioned).toBe(false);
    const headers = { ...auth, "content-type": "application/json" };
    const changed = await apiWithEnv({}, "PUT", `/b/${name}`, headers, '{"quota_type": "FIFO"}');
    expect(changed.status, await changed.text()).toBe(200);
    const deleted = await apiWithEnv({}, "DELETE", `/b/${name}`, auth);
    expect(deleted.status, await deleted.text()).toBe(200);
  });
});
