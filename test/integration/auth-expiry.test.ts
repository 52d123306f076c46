/**
 * Token expiry with real time: `expires_at`, and `ttl` as seconds of inactivity measured
 * from the last access (or creation), refreshed by use.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function create(body: unknown): Promise<{ name: string; value: string }> {
  const name = uniqueName("expiring");
  const response = await api("POST", `/tokens/${name}`, { body: JSON.stringify(body) });
  expect(response.status, await response.clone().text()).toBe(200);
  return { name, value: ((await response.json()) as { value: string }).value };
}

async function view(name: string): Promise<{ is_expired: boolean; last_access: string | null; ttl: number | null }> {
  return (await api("GET", `/tokens/${name}`)).json();
}

describe("expiry", () => {
  it("expires_at: works until then, 401 afterwards, shown as expired, cannot be rotated", async () => {
    const token = await create({ permissions: { read: ["x"] }, expires_at: new Date(Date.now() + 1000).toISOString() });
    expect((await api("GET", "/me", { token: token.value })).status).toBe(200);
    expect((await view(token.name)).is_expired).toBe(false);
    await sleep(1100);
    await expectError(await api("GET", "/me", { token: token.value }), 401, "Token has expired");
    expect((await view(token.name)).is_expired).toBe(true);
    await expectError(await api("POST", `/tokens/${token.name}/rotate`), 422, `Can't rotate expired token '${token.name}'`);
    // Still listed and deletable.
    expect((await api("DELETE", `/tokens/${token.name}`)).status).toBe(200);
  });

  it("ttl counts inactivity: regular use keeps the token alive past its ttl since creation", async () => {
    const token = await create({ permissions: { read: ["x"] }, ttl: 2 });
    expect((await view(token.name)).ttl).toBe(2);
    expect((await api("GET", "/me", { token: token.value })).status).toBe(200);
    const firstAccess = (await view(token.name)).last_access;
    expect(firstAccess).not.toBeNull();

    await sleep(1300);
    expect((await api("GET", "/me", { token: token.value })).status).toBe(200);
    const secondAccess = (await view(token.name)).last_access;
    expect(Date.parse(secondAccess!)).toBeGreaterThan(Date.parse(firstAccess!));

    await sleep(1300); // 2.6 s after creation, 1.3 s after the last use
    expect((await api("GET", "/me", { token: token.value })).status).toBe(200);
    expect((await view(token.name)).is_expired).toBe(false);

    await sleep(2100); // idle longer than the ttl
    expect((await view(token.name)).is_expired).toBe(true);
    await expectError(await api("GET", "/me", { token: token.value }), 401, "Token has expired");
  });

  it("ttl: rotating an idle token revives it (only expires_at blocks rotation, as in the reference)", async () => {
    const token = await create({ permissions: { read: ["x"] }, ttl: 1 });
    await sleep(1100);
    await expectError(await api("GET", "/me", { token: token.value }), 401, "Token has expired");
    const rotated = await api("POST", `/tokens/${token.name}/rotate`);
    expect(rotated.status).toBe(200);
    const { value } = (await rotated.json()) as { value: string };
    expect((await api("GET", "/me", { token: value })).status).toBe(200);
    await expectError(await api("GET", "/me", { token: token.value }), 401, "Invalid token");
  });
});
