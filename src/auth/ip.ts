/**
 * IP addresses for token allowlists and the client address of a request.
 *
 * Addresses are parsed strictly (like Rust's `IpAddr`: dotted-quad IPv4 without leading zeros,
 * RFC 4291 IPv6 text without zone ids) into a family and a bigint. IPv4-mapped IPv6 addresses
 * (`::ffff:a.b.c.d`) are treated as the IPv4 address they carry, on both sides of a comparison, so
 * a dual-stack peer matches an IPv4 allowlist entry.
 */

export interface IpAddress {
  version: 4 | 6;
  /** The address as an unsigned integer (32 or 128 bits). */
  bits: bigint;
}

export interface IpNetwork {
  network: IpAddress;
  prefix: number;
}

const IPV4_PART = /^(0|[1-9]\d{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const MAPPED_PREFIX = 0xffffn << 32n;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let bits = 0n;
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bits = (bits << 8n) | BigInt(value);
  }
  return bits;
}

/** Parses the groups on one side of `::` into 16-bit values (an IPv4 tail counts as two groups). */
function parseGroups(text: string, allowIpv4Tail: boolean): number[] | undefined {
  if (text === "") return [];
  const groups = text.split(":");
  const values: number[] = [];
  for (const [index, group] of groups.entries()) {
    if (allowIpv4Tail && index === groups.length - 1 && group.includes(".")) {
      const v4 = parseIpv4(group);
      if (v4 === undefined) return undefined;
      values.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else {
      if (!HEX_GROUP.test(group)) return undefined;
      values.push(Number.parseInt(group, 16));
    }
  }
  return values;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0] ?? "", false);
    const tail = parseGroups(halves[1] ?? "", true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (all?.length !== 8) return undefined;
    groups = all;
  }
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(group), 0n);
}

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 addresses become IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(":")) {
    const bits = parseIpv6(text);
    if (bits === undefined) return undefined;
    if (bits >> 32n === 0xffffn) return { version: 4, bits: bits & 0xffffffffn };
    return { version: 6, bits };
  }
  const bits = parseIpv4(text);
  return bits === undefined ? undefined : { version: 4, bits };
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as `::`). */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.bits >> shift) & 0xffn)).join(".");
  }
  const groups = Array.from({ length: 8 }, (_, index) => Number((ip.bits >> BigInt(112 - index * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = (part: number[]) => part.map((group) => group.toString(16)).join(":");
  if (bestLength < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/**
 * Parses an allowlist entry: an address (a single-host network) or `address/prefix`. A mapped
 * IPv6 network with a prefix of at least 96 bits becomes the IPv4 network it covers.
 */
export function parseNetwork(entry: string): IpNetwork | undefined {
  const slash = entry.indexOf("/");
  const addressText = slash === -1 ? entry : entry.slice(0, slash);
  const prefixText = slash === -1 ? undefined : entry.slice(slash + 1);
  const isV6Text = addressText.includes(":");
  const address = parseIp(addressText);
  if (!address) return undefined;
  const textBits = isV6Text ? 128 : 32;
  let prefix = textBits;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > textBits) return undefined;
  }
  if (isV6Text && address.version === 4) {
    // ::ffff:a.b.c.d/p — only meaningful as IPv4 when the prefix covers the mapping bits.
    if (prefix < 96) return { network: { version: 6, bits: MAPPED_PREFIX | address.bits }, prefix };
    prefix -= 96;
  }
  return { network: address, prefix };
}

export function networkContains(network: IpNetwork, ip: IpAddress): boolean {
  const width = network.network.version === 4 ? 32n : 128n;
  const candidate = ip.version === network.network.version ? ip.bits : ip.version === 4 ? MAPPED_PREFIX | ip.bits : undefined;
  if (candidate === undefined) return false;
  const hostBits = width - BigInt(network.prefix);
  return candidate >> hostBits === network.network.bits >> hostBits;
}

/** True when `ip` equals an allowlist entry or lies in one of its CIDR ranges; bad entries match nothing. */
export function ipAllowed(allowlist: readonly string[], ip: string): boolean {
  const address = parseIp(ip);
  if (!address) return false;
  return allowlist.some((entry) => {
    const network = parseNetwork(entry);
    return network !== undefined && networkContains(network, address);
  });
}

const LOCAL_NETWORKS = [
  "127.0.0.0/8",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "169.254.0.0/16",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
].map((entry) => parseNetwork(entry) as IpNetwork);

/** Loopback, private or link-local: a peer whose forwarded headers we trust. */
export function isLocalAddress(ip: IpAddress): boolean {
  return LOCAL_NETWORKS.some((network) => networkContains(network, ip));
}

/** An address in a forwarding header: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `"..."`, `2001:db8::1`. */
function parseHostIp(text: string): IpAddress | undefined {
  let host = text.trim();
  if (host.startsWith('"') && host.endsWith('"') && host.length >= 2) host = host.slice(1, -1).trim();
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close === -1) return undefined;
    return parseIp(host.slice(1, close));
  }
  const direct = parseIp(host);
  if (direct) return direct;
  const colon = host.lastIndexOf(":");
  if (colon !== -1 && host.indexOf(":") === colon) return parseIp(host.slice(0, colon));
  return undefined;
}

/** The `for=` address of the first hop of an RFC 7239 `Forwarded` header. */
function forwardedFor(header: string): IpAddress | undefined {
  const firstHop = header.split(",")[0] ?? "";
  for (const pair of firstHop.split(";")) {
    const equals = pair.indexOf("=");
    if (equals !== -1 && pair.slice(0, equals).trim().toLowerCase() === "for") return parseHostIp(pair.slice(equals + 1));
  }
  return undefined;
}

/**
 * The client address of a request, canonically formatted, or undefined when unknown.
 *
 * On Cloudflare the peer is `CF-Connecting-IP` (set by the edge; clients cannot forge it). When the
 * peer is loopback/private/link-local — or unknown, which only happens when the Worker is called
 * directly in local development and tests — the first hop of `Forwarded: for=` and then the first
 * element of `X-Forwarded-For` are trusted, as ReductStore does for a local reverse proxy.
 */
export function clientIp(request: Request): string | undefined {
  const headers = request.headers;
  const peerText = headers.get("cf-connecting-ip");
  const peer = peerText === null ? undefined : parseHostIp(peerText);
  if (peer && !isLocalAddress(peer)) return formatIp(peer);
  const forwarded = headers.get("forwarded");
  const fromForwarded = forwarded === null ? undefined : forwardedFor(forwarded);
  if (fromForwarded) return formatIp(fromForwarded);
  const xff = headers.get("x-forwarded-for");
  const fromXff = xff === null ? undefined : parseHostIp(xff.split(",")[0] ?? "");
  if (fromXff) return formatIp(fromXff);
  return peer ? formatIp(peer) : undefined;
}
