import { describe, expect, it } from "vitest";
import { clientIp, formatIp, ipAllowed, isLocalAddress, parseIp, parseNetwork } from "../../src/auth/ip";

const canonical = (text: string) => {
  const ip = parseIp(text);
  return ip === undefined ? undefined : formatIp(ip);
};

describe("parseIp / formatIp", () => {
  it.each([
    ["203.0.113.10", "203.0.113.10"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["fe80::1:2", "fe80::1:2"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    // IPv4-mapped addresses are the IPv4 address they carry.
    ["::ffff:203.0.113.10", "203.0.113.10"],
    ["::ffff:cb00:710a", "203.0.113.10"],
  ])("%s → %s", (text, expected) => {
    expect(canonical(text)).toBe(expected);
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "a.b.c.d",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1::2::3",
    "12345::",
    "::g",
    "fe80::1%eth0",
    "1:2:3:4:5:6:7:8::",
    ":1:2:3:4:5:6:7",
    "::1.2.3.4:5",
    "localhost",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("ipAllowed (allowlist entries: addresses and CIDRs)", () => {
  it.each([
    [["203.0.113.10"], "203.0.113.10", true],
    [["203.0.113.10"], "203.0.113.11", false],
    [["10.0.0.0/8"], "10.255.1.2", true],
    [["10.0.0.0/8"], "11.0.0.1", false],
    [["10.1.2.0/24"], "10.1.2.42", true],
    [["10.1.2.0/24"], "10.1.3.1", false],
    [["10.1.2.3/24"], "10.1.2.200", true], // host bits in the entry are ignored
    [["0.0.0.0/0"], "198.51.100.1", true],
    [["203.0.113.10/32"], "203.0.113.10", true],
    [["203.0.113.10/32"], "203.0.113.11", false],
    [["127.0.0.1", "10.0.0.0/8"], "10.0.0.7", true],
    [["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", true],
    [["127.0.0.1", "10.0.0.0/8"], "192.168.0.1", false],
    [["2001:db8::/32"], "2001:db8::1234", true],
    [["2001:db8::/32"], "2001:db9::1", false],
    [["2001:db8::1"], "2001:DB8:0::1", true],
    [["2001:db8::/128"], "2001:db8::1", false],
    [["::/0"], "2001:db8::1", true],
    [["fe80::/10"], "febf::1", true],
    [["fe80::/10"], "fec0::1", false],
    // Families: an IPv4 entry never matches a plain IPv6 client and vice versa…
    [["10.0.0.0/24"], "2001:db8::1", false],
    [["2001:db8::/32"], "10.0.0.1", false],
    // …but IPv4-mapped addresses match as IPv4, on either side.
    [["203.0.113.0/24"], "::ffff:203.0.113.9", true],
    [["::ffff:203.0.113.0/120"], "203.0.113.9", true],
    [["::ffff:203.0.113.0/120"], "203.0.114.9", false],
    [["::ffff:0:0/96"], "198.51.100.1", true],
    // Entries that do not parse match nothing.
    [["not-an-ip"], "203.0.113.5", false],
    [["10.0.0.0/abc"], "10.0.0.1", false],
    [["10.0.0.0/33"], "10.0.0.1", false],
    [["10.0.0.0/-1"], "10.0.0.1", false],
    [["10.0.0.0/08"], "10.0.0.1", false],
    [["2001:db8::/129"], "2001:db8::1", false],
    [["10.0.0.0/"], "10.0.0.1", false],
    [[], "10.0.0.1", false],
    [["10.0.0.0/8"], "not-an-ip", false],
  ])("%j allows %s: %s", (allowlist, ip, expected) => {
    expect(ipAllowed(allowlist, ip)).toBe(expected);
  });

  it("validates entries the way create does", () => {
    expect(parseNetwork("10.0.0.0/8")).toEqual({ network: { version: 4, bits: 0x0a000000n }, prefix: 8 });
    expect(parseNetwork("2001:db8::1")).toEqual({
      network: { version: 6, bits: 0x20010db8000000000000000000000001n },
      prefix: 128,
    });
    expect(parseNetwork("::ffff:10.0.0.0/104")).toEqual({ network: { version: 4, bits: 0x0a000000n }, prefix: 8 });
    expect(parseNetwork("10.0.0.0/32/1")).toBeUndefined();
  });
});

describe("isLocalAddress", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.255.0.1", true],
    ["10.1.2.3", true],
    ["172.16.0.1", true],
    ["172.31.255.255", true],
    ["172.32.0.1", false],
    ["192.168.1.1", true],
    ["169.254.1.1", true],
    ["::1", true],
    ["fd00::1", true],
    ["fc00::1", true],
    ["fe80::1", true],
    ["::ffff:127.0.0.1", true],
    ["8.8.8.8", false],
    ["203.0.113.10", false],
    ["2001:db8::1", false],
    ["::", false],
  ])("%s → %s", (text, expected) => {
    expect(isLocalAddress(parseIp(text)!)).toBe(expected);
  });
});

describe("clientIp", () => {
  const request = (headers: Record<string, string>) => new Request("http://localhost/", { headers });

  it.each([
    // A public peer is the client; forwarded headers from it are ignored (they are client-controlled).
    [{ "cf-connecting-ip": "198.51.100.7", "x-forwarded-for": "203.0.113.10" }, "198.51.100.7"],
    [{ "cf-connecting-ip": "198.51.100.7", forwarded: "for=203.0.113.10" }, "198.51.100.7"],
    [{ "cf-connecting-ip": "2001:DB8::0:1" }, "2001:db8::1"],
    // A local peer (a reverse proxy on the same host or network) is trusted to forward.
    [{ "cf-connecting-ip": "127.0.0.1", "x-forwarded-for": "203.0.113.10, 10.0.0.1" }, "203.0.113.10"],
    [{ "cf-connecting-ip": "::1", "x-forwarded-for": "203.0.113.10" }, "203.0.113.10"],
    [{ "cf-connecting-ip": "10.0.0.2", forwarded: 'for="[2001:db8::5]:4711";proto=https' }, "2001:db8::5"],
    [{ "cf-connecting-ip": "127.0.0.1", forwarded: "for=203.0.113.1, for=203.0.113.2" }, "203.0.113.1"],
    [{ "cf-connecting-ip": "127.0.0.1", forwarded: 'For="203.0.113.3:8080"' }, "203.0.113.3"],
    // Forwarded wins over X-Forwarded-For; an unusable Forwarded falls through to X-Forwarded-For.
    [{ forwarded: "for=203.0.113.1", "x-forwarded-for": "203.0.113.2" }, "203.0.113.1"],
    [{ forwarded: "for=_hidden", "x-forwarded-for": "203.0.113.2" }, "203.0.113.2"],
    [{ forwarded: "for=unknown", "x-forwarded-for": "garbage" }, undefined],
    [{ "cf-connecting-ip": "127.0.0.1", "x-forwarded-for": "garbage" }, "127.0.0.1"],
    [{ "cf-connecting-ip": "127.0.0.1" }, "127.0.0.1"],
    [{ "x-forwarded-for": "[2001:db8::9]:443" }, "2001:db8::9"],
    [{ "x-forwarded-for": "::ffff:203.0.113.10" }, "203.0.113.10"],
    [{}, undefined],
  ])("%j → %s", (headers, expected) => {
    expect(clientIp(request(headers))).toBe(expected);
  });
});
