import { describe, expect, it } from "vitest";
import { parseRfc3339 } from "../../src/auth/time";
import { isExpired, lastAccessInterval, type TokenRow, tokenView } from "../../src/auth/token-store";

describe("parseRfc3339", () => {
  it.each([
    ["2026-05-06T12:34:56Z", "2026-05-06T12:34:56Z", Date.UTC(2026, 4, 6, 12, 34, 56)],
    ["2026-05-06t12:34:56z", "2026-05-06T12:34:56Z", Date.UTC(2026, 4, 6, 12, 34, 56)],
    ["2026-05-06 12:34:56Z", "2026-05-06T12:34:56Z", Date.UTC(2026, 4, 6, 12, 34, 56)],
    ["2026-05-06T12:34:56.789Z", "2026-05-06T12:34:56.789Z", Date.UTC(2026, 4, 6, 12, 34, 56, 789)],
    ["2026-05-06T12:34:56.7Z", "2026-05-06T12:34:56.700Z", Date.UTC(2026, 4, 6, 12, 34, 56, 700)],
    ["2026-05-06T12:34:56.000Z", "2026-05-06T12:34:56Z", Date.UTC(2026, 4, 6, 12, 34, 56)],
    ["2026-05-06T12:34:56.789012345Z", "2026-05-06T12:34:56.789012345Z", Date.UTC(2026, 4, 6, 12, 34, 56, 789)],
    ["2026-05-06T12:34:56.7890Z", "2026-05-06T12:34:56.789Z", Date.UTC(2026, 4, 6, 12, 34, 56, 789)],
    ["2026-05-06T12:34:56+02:00", "2026-05-06T10:34:56Z", Date.UTC(2026, 4, 6, 10, 34, 56)],
    ["2026-05-06T00:30:00-01:30", "2026-05-06T02:00:00Z", Date.UTC(2026, 4, 6, 2, 0, 0)],
    ["2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z", Date.UTC(2025, 11, 31, 23, 30)],
    ["2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", Date.UTC(2028, 1, 29)],
    ["0050-01-01T00:00:00Z", "0050-01-01T00:00:00Z", Date.parse("0050-01-01T00:00:00Z")],
  ])("%s → %s", (text, canonical, ms) => {
    expect(parseRfc3339(text)).toEqual({ canonical, ms });
  });

  it.each([
    "",
    "2026-05-06",
    "2026-05-06T12:34:56",
    "2026-05-06T12:34Z",
    "2026-13-01T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-05-06T24:00:00Z",
    "2026-05-06T23:60:00Z",
    "2026-05-06T23:59:60Z",
    "2026-05-06T12:34:56.1234567890Z",
    "2026-05-06T12:34:56+2:00",
    "2026-05-06T12:34:56+24:00",
    "9999-12-31T23:30:00-01:00",
    " 2026-05-06T12:34:56Z",
    "+2026-05-06T12:34:56Z",
  ])("rejects %j", (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe("token expiry and last-access throttle", () => {
  const t0 = Date.UTC(2030, 0, 1);
  const iso = (ms: number) => new Date(ms).toISOString();
  const row = (patch: Partial<TokenRow>): TokenRow => ({
    name: "t",
    lookup: "0123456789abcdef",
    hash: "sha256:00:00",
    created_at: iso(t0),
    is_provisioned: 0,
    full_access: 0,
    read_buckets: '["a"]',
    write_buckets: "[]",
    expires_at: null,
    ttl: null,
    last_access: null,
    ip_allowlist: "[]",
    ...patch,
  });

  it.each<[string, Partial<TokenRow>, number, boolean]>([
    ["no limits", {}, t0 + 1e12, false],
    ["before expires_at", { expires_at: iso(t0 + 1000) }, t0 + 999, false],
    ["at expires_at", { expires_at: iso(t0 + 1000) }, t0 + 1000, true],
    ["after expires_at", { expires_at: iso(t0 + 1000) }, t0 + 5000, true],
    ["sub-ms expiry digits", { expires_at: "2030-01-01T00:00:01.000999Z" }, t0 + 1000, true],
    ["ttl counted from creation", { ttl: 10 }, t0 + 9_999, false],
    ["ttl elapsed since creation", { ttl: 10 }, t0 + 10_000, true],
    ["ttl counted from last access", { ttl: 10, last_access: iso(t0 + 60_000) }, t0 + 69_999, false],
    ["ttl elapsed since last access", { ttl: 10, last_access: iso(t0 + 60_000) }, t0 + 70_000, true],
    ["ttl fine but expired by date", { ttl: 100, expires_at: iso(t0 + 1) }, t0 + 2, true],
    ["unparsable stored expiry fails closed", { expires_at: "garbage" }, t0, true],
  ])("%s", (_label, patch, now, expected) => {
    expect(isExpired(row(patch), now)).toBe(expected);
    expect(tokenView(row(patch), now).is_expired).toBe(expected);
  });

  it("writes last_access at most once a minute, or every tenth of a shorter TTL", () => {
    expect(lastAccessInterval(null)).toBe(60_000);
    expect(lastAccessInterval(3600)).toBe(60_000);
    expect(lastAccessInterval(600)).toBe(60_000);
    expect(lastAccessInterval(120)).toBe(12_000);
    expect(lastAccessInterval(1)).toBe(100);
  });

  it("tokenView returns exactly the 10 keys of a token view with an empty value", () => {
    const view = tokenView(row({ full_access: 1, ip_allowlist: '["10.0.0.0/8"]', ttl: 5, is_provisioned: 1 }), t0);
    expect(view).toEqual({
      name: "t",
      value: "",
      created_at: iso(t0),
      permissions: { full_access: true, read: ["a"], write: [] },
      is_provisioned: true,
      expires_at: null,
      ttl: 5,
      last_access: null,
      ip_allowlist: ["10.0.0.0/8"],
      is_expired: false,
    });
    expect(Object.keys(view).sort()).toEqual(
      [
        "created_at",
        "expires_at",
        "ip_allowlist",
        "is_expired",
        "is_provisioned",
        "last_access",
        "name",
        "permissions",
        "ttl",
        "value",
      ].sort(),
    );
  });
});
