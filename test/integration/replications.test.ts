/**
 * The replication API before replication exists: an empty list, every name unknown, creation
 * refused with nothing stored; full access only. Table-driven over statuses and error strings.
 */
import { describe, expect, it } from "vitest";
import { REPLICATION_UNSUPPORTED } from "../../src/api/replications";
import { api, expectError, uniqueName } from "../helpers/http";

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const settings = { src_bucket: "a", dst_bucket: "b", dst_host: "https://example.com", entries: [] };

describe("replication API (not built yet)", () => {
  it("lists no replications", async () => {
    const response = await api("GET", "/replications");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({ replications: [] });
  });

  it.each([
    ["GET", "/replications/r1", undefined, 404, "Replication 'r1' does not exist"],
    ["DELETE", "/replications/r1", undefined, 404, "Replication 'r1' does not exist"],
    ["PUT", "/replications/r1", settings, 404, "Replication 'r1' does not exist"],
    ["PATCH", "/replications/r1/mode", { mode: "paused" }, 404, "Replication 'r1' does not exist"],
    ["POST", "/replications/r1", settings, 422, REPLICATION_UNSUPPORTED],
  ] as const)("%s %s → %i", async (method, path, body, status, message) => {
    await expectError(await api(method, path, body ? json(body) : {}), status, message);
  });

  it("a refused create stores nothing", async () => {
    await api("POST", "/replications/r2", json(settings)).then((response) => response.arrayBuffer());
    expect(await (await api("GET", "/replications")).json()).toEqual({ replications: [] });
  });

  it("needs full access", async () => {
    const reader = uniqueName("reader");
    const created = await api("POST", `/tokens/${reader}`, json({ full_access: false, read: ["*"], write: ["*"] }));
    const { value } = (await created.json()) as { value: string };
    for (const [method, path] of [
      ["GET", "/replications"],
      ["GET", "/replications/r1"],
      ["POST", "/replications/r1"],
      ["DELETE", "/replications/r1"],
    ] as const) {
      await expectError(await api(method, path, { token: value }), 403, `Token '${reader}' doesn't have full access`);
    }
    await expectError(await api("GET", "/replications", { token: "wrong" }), 401, "Invalid token");
  });
});
