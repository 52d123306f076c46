/**
 * API tokens in D1, stored hashed: a 64-bit lookup prefix of sha256(value) finds the row, then the
 * salted hash (`sha256:<salt hex>:<hash hex>`) is compared in constant time. Token values are
 * returned only by create and rotate.
 */
import { unauthorized } from "../errors";
import type { AuthRequest } from "./authenticate";
import type { TokenView } from "./policy";

export interface TokenRow {
  name: string;
  lookup: string;
  hash: string;
  created_at: string;
  full_access: number;
  read_buckets: string;
  write_buckets: string;
  expires_at: string | null;
  ttl: number | null;
  last_access: string | null;
  ip_allowlist: string;
}

const encoder = new TextEncoder();

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(...parts: (string | Uint8Array)[]): Promise<string> {
  const chunks = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : part));
  const bytes = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

/** The row index for a token value: the first 16 hex digits of its SHA-256. */
export async function tokenLookup(value: string): Promise<string> {
  return (await sha256Hex(value)).slice(0, 16);
}

export async function hashToken(value: string, salt = crypto.getRandomValues(new Uint8Array(16))): Promise<string> {
  return `sha256:${toHex(salt)}:${await sha256Hex(salt, value)}`;
}

export async function verifyTokenHash(value: string, stored: string): Promise<boolean> {
  const [scheme, saltHex, hashHex] = stored.split(":");
  if (scheme !== "sha256" || !saltHex || !hashHex) return false;
  const salt = new Uint8Array(saltHex.match(/../g)?.map((pair) => Number.parseInt(pair, 16)) ?? []);
  const actual = encoder.encode(await sha256Hex(salt, value));
  const expected = encoder.encode(hashHex);
  return actual.byteLength === expected.byteLength && crypto.subtle.timingSafeEqual(actual, expected);
}

export function tokenView(row: TokenRow, nowMs = Date.now()): TokenView {
  return {
    name: row.name,
    value: "",
    created_at: row.created_at,
    permissions: {
      full_access: row.full_access === 1,
      read: JSON.parse(row.read_buckets) as string[],
      write: JSON.parse(row.write_buckets) as string[],
    },
    is_provisioned: false,
    expires_at: row.expires_at,
    ttl: row.ttl,
    last_access: row.last_access,
    ip_allowlist: JSON.parse(row.ip_allowlist) as string[],
    is_expired: isExpired(row, nowMs),
  };
}

export function isExpired(row: Pick<TokenRow, "expires_at" | "ttl" | "last_access" | "created_at">, nowMs: number): boolean {
  if (row.expires_at !== null && Date.parse(row.expires_at) <= nowMs) return true;
  if (row.ttl !== null) {
    const since = Date.parse(row.last_access ?? row.created_at);
    if (nowMs - since >= row.ttl * 1000) return true;
  }
  return false;
}

/** The client address: Cloudflare's CF-Connecting-IP, or forwarded headers from a local proxy. */
export function clientIp(request: Request): string | undefined {
  const connecting = request.headers.get("cf-connecting-ip") ?? undefined;
  if (connecting !== undefined && !isLocalAddress(connecting)) return connecting;
  const forwarded = request.headers.get("forwarded");
  const forwardedFor = forwarded?.match(/for="?\[?([^;,"\]]+)/i)?.[1];
  const xff = request.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return forwardedFor ?? (xff || undefined) ?? connecting;
}

function isLocalAddress(ip: string): boolean {
  return /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|::1$|fc|fd|fe80:)/i.test(ip);
}

export async function findStoredToken(db: D1Database, value: string, request: AuthRequest): Promise<TokenView | undefined> {
  const row = await db
    .prepare("SELECT * FROM tokens WHERE lookup = ?1")
    .bind(await tokenLookup(value))
    .first<TokenRow>();
  if (!row || !(await verifyTokenHash(value, row.hash))) return undefined;
  const now = Date.now();
  if (isExpired(row, now)) throw unauthorized("Token has expired");
  const allowlist = JSON.parse(row.ip_allowlist) as string[];
  if (allowlist.length > 0) {
    if (request.clientIp === undefined) throw unauthorized("Client IP is required for this token");
    if (!ipAllowed(allowlist, request.clientIp)) throw unauthorized(`Token is not allowed for client IP ${request.clientIp}`);
  }
  return tokenView(row, now);
}

/** True when `ip` equals an entry or lies in one of its IPv4 CIDR ranges. */
export function ipAllowed(allowlist: string[], ip: string): boolean {
  return allowlist.some((entry) => {
    if (!entry.includes("/")) return entry === ip;
    const [network, bits] = entry.split("/");
    const prefix = Number(bits);
    const a = ipv4ToInt(network ?? "");
    const b = ipv4ToInt(ip);
    if (a === undefined || b === undefined || !(prefix >= 0 && prefix <= 32)) return false;
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    return (a & mask) >>> 0 === (b & mask) >>> 0;
  });
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) return undefined;
  return parts.reduce((total, part) => total * 256 + part, 0) >>> 0;
}
