import { describe, expect, it } from "vitest";
import {
  bucketMatches,
  type Caller,
  canRead,
  canWrite,
  requireFullAccess,
  requireRead,
  requireWrite,
} from "../../src/auth/policy";
import { HttpError } from "../../src/errors";

function caller(name: string, full_access: boolean, read: string[], write: string[]): Caller {
  return {
    token: {
      name,
      value: "",
      created_at: "2026-01-01T00:00:00.000Z",
      permissions: { full_access, read, write },
      is_provisioned: false,
      expires_at: null,
      ttl: null,
      last_access: null,
      ip_allowlist: [],
      is_expired: false,
    },
  };
}

describe("bucketMatches", () => {
  it.each([
    ["bucket-1", "bucket-1", true],
    ["bucket-1", "bucket-2", false],
    ["bucket-1", "bucket-10", false],
    ["*", "anything", true],
    ["*", "a", true],
    ["bucket-*", "bucket-1", true],
    ["bucket-*", "bucket-", true],
    ["bucket-*", "bucket", false],
    ["bucket-*", "other-1", false],
    ["b*", "B1", false],
    // System buckets: only an exact entry matches; no wildcard ever does.
    ["*", "$system", false],
    ["$*", "$system", false],
    ["$sys*", "$system", false],
    ["$system", "$system", true],
    ["$system", "$audit", false],
    ["system", "$system", false],
    // A star elsewhere than at the end is not a wildcard.
    ["*-1", "bucket-1", false],
    ["a*b", "axb", false],
    ["a*b", "a*b", true],
  ])("%j matches %j: %s", (pattern, bucket, expected) => {
    expect(bucketMatches(pattern, bucket)).toBe(expected);
  });
});

describe("policies", () => {
  const full = caller("full", true, [], []);
  const reader = caller("reader", false, ["logs-*", "$system"], []);
  const writer = caller("writer", false, [], ["logs-1"]);
  const none = caller("none", false, [], []);

  it("read and write are independent; full access passes everything but writing $system", () => {
    const rows = [
      [full, "logs-1", true, true],
      [full, "$system", true, false],
      [reader, "logs-1", true, false],
      [reader, "$system", true, false],
      [reader, "other", false, false],
      [writer, "logs-1", false, true],
      [writer, "logs-2", false, false],
      [none, "logs-1", false, false],
    ] as const;
    for (const [who, bucket, read, write] of rows) {
      expect({ who: who.token.name, bucket, read: canRead(who, bucket), write: canWrite(who, bucket) }).toEqual({
        who: who.token.name,
        bucket,
        read,
        write,
      });
    }
  });

  it("throws the exact 403 messages", () => {
    const thrown = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(HttpError);
        return { status: (error as HttpError).status, message: (error as HttpError).message };
      }
      return undefined;
    };
    expect(thrown(() => requireFullAccess(reader))).toEqual({ status: 403, message: "Token 'reader' doesn't have full access" });
    expect(thrown(() => requireRead(writer, "logs-1"))).toEqual({
      status: 403,
      message: "Token 'writer' doesn't have read access to bucket 'logs-1'",
    });
    expect(thrown(() => requireWrite(reader, "logs-1"))).toEqual({
      status: 403,
      message: "Token 'reader' doesn't have write access to bucket 'logs-1'",
    });
    expect(thrown(() => requireFullAccess(full))).toBeUndefined();
    expect(thrown(() => requireRead(reader, "logs-9"))).toBeUndefined();
    expect(thrown(() => requireWrite(writer, "logs-1"))).toBeUndefined();
  });
});

describe("$system", () => {
  it.each([
    ["full access", caller("full", true, [], []), true, false],
    ["read *", caller("star", false, ["*"], ["*"]), false, false],
    ["read $*", caller("dollar-star", false, ["$*"], ["$*"]), false, false],
    ["read $system", caller("exact", false, ["$system"], ["$system"]), true, false],
    ["no permissions", caller("none", false, [], []), false, false],
  ])("%s: read %s, write %s", (_label, who, readable, writable) => {
    expect(canRead(who, "$system")).toBe(readable);
    expect(canWrite(who, "$system")).toBe(writable);
  });
});
