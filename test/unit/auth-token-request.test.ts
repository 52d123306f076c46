import { describe, expect, it } from "vitest";
import {
  assertTokenName,
  parseTokenCreateBody,
  type TokenCreateRequest,
  validateTokenCreateRequest,
} from "../../src/auth/token-request";
import { HttpError } from "../../src/errors";

function failure(fn: () => unknown): { status: number; message: string } | undefined {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { status: error.status, message: error.message };
  }
  return undefined;
}

const NONE = { full_access: false, read: [], write: [] };

describe("parseTokenCreateBody: accepted shapes", () => {
  it.each<[string, string, TokenCreateRequest]>([
    ["v1 empty object = no permissions", "{}", { permissions: NONE, expiresAt: null, ttl: null, ipAllowlist: [] }],
    ["v1 full_access only", '{"full_access": false}', { permissions: NONE, expiresAt: null, ttl: null, ipAllowlist: [] }],
    [
      "v1 flat",
      '{"full_access": true, "read": ["a"], "write": ["b", "c-*"], "ip_allowlist": ["10.0.0.0/8"]}',
      {
        permissions: { full_access: true, read: ["a"], write: ["b", "c-*"] },
        expiresAt: null,
        ttl: null,
        ipAllowlist: ["10.0.0.0/8"],
      },
    ],
    [
      "v2 permissions only",
      '{"permissions": {"full_access": true}}',
      { permissions: { full_access: true, read: [], write: [] }, expiresAt: null, ttl: null, ipAllowlist: [] },
    ],
    [
      "v2 with nulls",
      '{"permissions": {"read": ["x"]}, "expires_at": null, "ttl": null}',
      { permissions: { full_access: false, read: ["x"], write: [] }, expiresAt: null, ttl: null, ipAllowlist: [] },
    ],
    [
      "v2 full",
      '{"permissions": {"full_access": false, "read": ["r"], "write": ["w"]}, "expires_at": "2030-01-02T03:04:05+01:00", "ttl": 120000, "ip_allowlist": ["127.0.0.1"]}',
      {
        permissions: { full_access: false, read: ["r"], write: ["w"] },
        expiresAt: { ms: Date.UTC(2030, 0, 2, 2, 4, 5), canonical: "2030-01-02T02:04:05Z" },
        ttl: 120000,
        ipAllowlist: ["127.0.0.1"],
      },
    ],
    [
      "v2 with reduct-js toISOString expiry",
      '{"permissions": {"full_access": true, "read": [], "write": []}, "expires_at": "2030-05-06T07:08:09.123Z"}',
      {
        permissions: { full_access: true, read: [], write: [] },
        expiresAt: { ms: Date.UTC(2030, 4, 6, 7, 8, 9, 123), canonical: "2030-05-06T07:08:09.123Z" },
        ttl: null,
        ipAllowlist: [],
      },
    ],
    // A "ttl: 0" parses; validation rejects it with its own message.
    ["v2 ttl 0 parses", '{"permissions": {}, "ttl": 0}', { permissions: NONE, expiresAt: null, ttl: 0, ipAllowlist: [] }],
  ])("%s", (_label, body, expected) => {
    expect(parseTokenCreateBody(body)).toEqual(expected);
  });
});

describe("parseTokenCreateBody: 422 Invalid body", () => {
  it.each([
    ["empty", ""],
    ["whitespace", "  \n"],
    ["not JSON", "{full_access: true}"],
    ["truncated JSON", '{"full_access": true'],
    ["null", "null"],
    ["array", "[]"],
    ["string", '"x"'],
    ["number", "1"],
    ["v1 unknown key", '{"full_access": true, "admin": true}'],
    ["v1 misspelt key", '{"fullaccess": true}'],
    ["v2 unknown top-level key", '{"permissions": {}, "expires_in": "5d"}'],
    ["v2 unknown key inside permissions", '{"permissions": {"full_access": true, "delete": true}}'],
    ["v2 ip_allowlist inside permissions", '{"permissions": {"ip_allowlist": []}}'],
    ["mixed shapes", '{"permissions": {}, "full_access": true}'],
    ["v2 without permissions", '{"expires_at": "2030-01-01T00:00:00Z"}'],
    ["v1 with expires_at", '{"full_access": true, "expires_at": "2030-01-01T00:00:00Z"}'],
    ["permissions not an object", '{"permissions": "invalid"}'],
    ["permissions null", '{"permissions": null}'],
    ["full_access not a bool", '{"full_access": 1}'],
    ["read not an array", '{"read": "bucket"}'],
    ["read item not a string", '{"read": [1]}'],
    ["read null", '{"read": null}'],
    ["ip_allowlist not an array", '{"ip_allowlist": "10.0.0.1"}'],
    ["ttl negative", '{"permissions": {}, "ttl": -1}'],
    ["ttl fractional", '{"permissions": {}, "ttl": 1.5}'],
    ["ttl string", '{"permissions": {}, "ttl": "60"}'],
    ["ttl too large", '{"permissions": {}, "ttl": 1e300}'],
    ["expires_at not RFC 3339", '{"permissions": {}, "expires_at": "tomorrow"}'],
    ["expires_at without zone", '{"permissions": {}, "expires_at": "2030-01-01T00:00:00"}'],
    ["expires_at impossible date", '{"permissions": {}, "expires_at": "2030-02-30T00:00:00Z"}'],
    ["expires_at as a number", '{"permissions": {}, "expires_at": 1893456000}'],
  ])("%s", (_label, body) => {
    expect(failure(() => parseTokenCreateBody(body))).toEqual({ status: 422, message: "Invalid body" });
  });
});

describe("validateTokenCreateRequest", () => {
  const now = Date.UTC(2030, 0, 1);
  const request = (patch: Partial<TokenCreateRequest> & { read?: string[]; write?: string[] }): TokenCreateRequest => ({
    permissions: { full_access: false, read: patch.read ?? [], write: patch.write ?? [] },
    expiresAt: patch.expiresAt ?? null,
    ttl: patch.ttl ?? null,
    ipAllowlist: patch.ipAllowlist ?? [],
  });
  const permissionError = (item: string) => ({
    status: 422,
    message: `Permission can contain only bucket names or wildcard '*', got '${item}'`,
  });

  it.each<[string, TokenCreateRequest, { status: number; message: string } | undefined]>([
    ["no permissions", request({}), undefined],
    ["bucket names and wildcards", request({ read: ["*", "bucket_1", "bucket-*"], write: ["b-2"] }), undefined],
    ["system buckets as they are", request({ read: ["$system", "$audit"], write: ["$anything"] }), undefined],
    ["slash in read", request({ read: ["a/b"] }), permissionError("a/b")],
    ["symbols in write", request({ write: ["%!"] }), permissionError("%!")],
    ["dot", request({ read: ["ok", "my.bucket"] }), permissionError("my.bucket")],
    ["space", request({ read: ["a b"] }), permissionError("a b")],
    ["empty item", request({ write: [""] }), permissionError("")],
    ["ttl 0", request({ ttl: 0 }), { status: 422, message: "Token TTL must be greater than zero" }],
    ["ttl 1", request({ ttl: 1 }), undefined],
    [
      "expiry in the past",
      request({ expiresAt: { ms: now - 1, canonical: "" } }),
      { status: 422, message: "Token expiration date must not be in the past" },
    ],
    ["expiry now", request({ expiresAt: { ms: now, canonical: "" } }), undefined],
    ["expiry in the future", request({ expiresAt: { ms: now + 1, canonical: "" } }), undefined],
    ["allowlist of addresses and CIDRs", request({ ipAllowlist: ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"] }), undefined],
    [
      "allowlist entry that is not an address",
      request({ ipAllowlist: ["10.0.0.1", "localhost"] }),
      { status: 422, message: "IP allowlist can contain only IP addresses or CIDR ranges, got 'localhost'" },
    ],
    [
      "allowlist prefix too long",
      request({ ipAllowlist: ["10.0.0.0/33"] }),
      { status: 422, message: "IP allowlist can contain only IP addresses or CIDR ranges, got '10.0.0.0/33'" },
    ],
    // The reference's order: permissions before TTL before expiry.
    ["permission checked before ttl", request({ read: ["a/b"], ttl: 0 }), permissionError("a/b")],
    [
      "ttl checked before expiry",
      request({ ttl: 0, expiresAt: { ms: now - 1, canonical: "" } }),
      { status: 422, message: "Token TTL must be greater than zero" },
    ],
  ])("%s", (_label, input, expected) => {
    expect(failure(() => validateTokenCreateRequest(input, now))).toEqual(expected);
  });
});

describe("assertTokenName", () => {
  it.each([
    ["token-1", undefined],
    ["init-token", undefined],
    ["a.b_c~!", undefined],
    ["x".repeat(256), undefined],
    ["", { status: 422, message: "Token name can't be empty" }],
    ["a b", { status: 422, message: "Token name can contain only visible ASCII characters without spaces" }],
    ["tök", { status: 422, message: "Token name can contain only visible ASCII characters without spaces" }],
    ["tab\t", { status: 422, message: "Token name can contain only visible ASCII characters without spaces" }],
    ["x".repeat(257), { status: 422, message: "Token name must be at most 256 characters" }],
  ])("%j", (name, expected) => {
    expect(failure(() => assertTokenName(name))).toEqual(expected);
  });
});
