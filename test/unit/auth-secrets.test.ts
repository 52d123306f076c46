import { describe, expect, it } from "vitest";
import {
  generateTokenValue,
  hashToken,
  secretsEqual,
  sha256Hex,
  TOKEN_VALUE_PATTERN,
  tokenLookup,
  verifyTokenHash,
} from "../../src/auth/secrets";

describe("token values", () => {
  it("are <name>-<32 lowercase hex> and differ every time", () => {
    const values = new Set(Array.from({ length: 50 }, () => generateTokenValue("token-1")));
    expect(values.size).toBe(50);
    for (const value of values) {
      expect(value).toMatch(/^token-1-[0-9a-f]{32}$/);
      expect(TOKEN_VALUE_PATTERN.test(value)).toBe(true);
    }
  });

  it.each([
    ["ABCB0001", false],
    ["", false],
    ["x-0123456789abcdef0123456789abcdef", true],
    ["x-0123456789ABCDEF0123456789ABCDEF", false],
    ["x-0123456789abcdef0123456789abcde", false],
    ["0123456789abcdef0123456789abcdef", false],
  ])("shape check %j → %s", (value, expected) => {
    expect(TOKEN_VALUE_PATTERN.test(value)).toBe(expected);
  });
});

describe("hashing", () => {
  it("stores sha256:<32 hex salt>:<64 hex hash> of salt||value", async () => {
    const salt = new Uint8Array(16).fill(7);
    const hash = await hashToken("secret-value", salt);
    expect(hash).toBe(`sha256:${"07".repeat(16)}:${await sha256Hex(salt, "secret-value")}`);
    expect(hash).toMatch(/^sha256:[0-9a-f]{32}:[0-9a-f]{64}$/);
    expect(hash).not.toContain("secret-value");
  });

  it("salts: the same value hashes differently each time, and both verify", async () => {
    const a = await hashToken("v-0123456789abcdef0123456789abcdef");
    const b = await hashToken("v-0123456789abcdef0123456789abcdef");
    expect(a).not.toBe(b);
    expect(await verifyTokenHash("v-0123456789abcdef0123456789abcdef", a)).toBe(true);
    expect(await verifyTokenHash("v-0123456789abcdef0123456789abcdef", b)).toBe(true);
  });

  it("the lookup is the first 16 hex digits of the unsalted sha256", async () => {
    expect(await tokenLookup("abc")).toBe((await sha256Hex("abc")).slice(0, 16));
    expect(await tokenLookup("abc")).toBe("ba7816bf8f01cfea");
  });

  it("verify rejects other values and malformed or tampered hashes", async () => {
    const stored = await hashToken("right");
    const [, salt, digest] = stored.split(":") as [string, string, string];
    const flipped = `${digest.slice(0, -1)}${digest.endsWith("0") ? "1" : "0"}`;
    const cases: [string, string, boolean][] = [
      ["right", stored, true],
      ["wrong", stored, false],
      ["righ", stored, false],
      ["right ", stored, false],
      ["right", `sha256:${salt}:${flipped}`, false],
      ["right", `sha512:${salt}:${digest}`, false],
      ["right", `sha256::${digest}`, false],
      ["right", `sha256:${salt}`, false],
      ["right", `sha256:${salt}:${digest}:extra`, false],
      ["right", `sha256:${salt}:${digest.slice(2)}`, false],
      ["right", `sha256:zz${salt.slice(2)}:${digest}`, false],
      ["right", "right", false],
      ["right", "", false],
    ];
    for (const [value, hash, expected] of cases) {
      expect({ value, hash, ok: await verifyTokenHash(value, hash) }).toEqual({ value, hash, ok: expected });
    }
  });

  it("secretsEqual compares any lengths exactly", async () => {
    expect(await secretsEqual("test-init-token", "test-init-token")).toBe(true);
    expect(await secretsEqual("test-init-token", "test-init-toke")).toBe(false);
    expect(await secretsEqual("test-init-token", "test-init-tokeN")).toBe(false);
    expect(await secretsEqual("", "")).toBe(true);
    expect(await secretsEqual("", "x")).toBe(false);
  });
});
