/**
 * RS_INIT_API_TOKEN without RS_API_TOKEN: authentication is on and `init-token` is a normal,
 * editable full-access token created with the env value. Real D1 (this file's own), nothing mocked.
 */

import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getTokenRow } from "../../src/auth/token-store";
import { apiWithEnv, expectError } from "../helpers/http";

const INITIAL = "initial-env-secret";
const initialOnly = { RS_API_TOKEN: undefined, RS_DISABLE_AUTH: undefined, RS_INIT_API_TOKEN: INITIAL };
const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

describe("RS_INIT_API_TOKEN alone", () => {
  it.each([
    ["GET", "/info"],
    ["GET", "/list"],
    ["POST", "/b/anyone"],
    ["GET", "/me"],
    ["GET", "/tokens"],
  ])("%s %s without a token is 401", async (method, path) => {
    await expectError(await apiWithEnv(initialOnly, method, path), 401, "No bearer token in request header");
  });

  it.each([
    ["GET", "/info"],
    ["GET", "/me"],
  ])("%s %s with a wrong token is 401", async (method, path) => {
    await expectError(await apiWithEnv(initialOnly, method, path, bearer("wrong")), 401, "Invalid token");
  });

  it("the env value is the full-access, not provisioned init-token, stored in D1", async () => {
    const me = await apiWithEnv(initialOnly, "GET", "/me", bearer(INITIAL));
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      name: "init-token",
      is_provisioned: false,
      permissions: { full_access: true, read: [], write: [] },
    });
    expect(await getTokenRow(env.DB, "init-token")).toMatchObject({ is_provisioned: 0, full_access: 1 });
    const list = await apiWithEnv(initialOnly, "GET", "/tokens", bearer(INITIAL));
    expect(((await list.json()) as { tokens: { name: string; is_provisioned: boolean }[] }).tokens).toContainEqual(
      expect.objectContaining({ name: "init-token", is_provisioned: false }),
    );
  });

  it("is rotatable: the new value works, the env value no longer does", async () => {
    const rotated = await apiWithEnv(initialOnly, "POST", "/tokens/init-token/rotate", bearer(INITIAL));
    expect(rotated.status).toBe(200);
    const { value } = (await rotated.json()) as { value: string };
    expect((await apiWithEnv(initialOnly, "GET", "/info", bearer(value))).status).toBe(200);
    await expectError(await apiWithEnv(initialOnly, "GET", "/info", bearer(INITIAL)), 401, "Invalid token");
  });
});

describe("RS_INIT_API_TOKEN creates init-token once", () => {
  it("a deleted init-token stays deleted while the variable is still set", async () => {
    // Earlier tests of this file rotated the token: start from a store that never saw the value.
    await env.DB.prepare("DELETE FROM tokens").run();
    await env.DB.prepare("DELETE FROM init_token_seeds").run();
    expect((await apiWithEnv(initialOnly, "GET", "/me", bearer(INITIAL))).status).toBe(200);
    const other = await apiWithEnv(
      initialOnly,
      "POST",
      "/tokens/second-admin",
      { ...bearer(INITIAL), "content-type": "application/json" },
      JSON.stringify({ full_access: true, read: [], write: [] }),
    );
    expect(other.status).toBe(200);
    const { value } = (await other.json()) as { value: string };
    expect((await apiWithEnv(initialOnly, "DELETE", "/tokens/init-token", bearer(value))).status).toBe(200);
    await expectError(await apiWithEnv(initialOnly, "GET", "/info", bearer(INITIAL)), 401, "Invalid token");
    expect(await getTokenRow(env.DB, "init-token")).toBeNull();
  });
});
