/**
 * Token secrets. A generated value is `<name>-<32 lowercase hex>` (128 random bits). D1 never holds
 * a value: a row keeps
 *  - `lookup`: the first 64 bits of SHA-256(value) in hex, an index to find the row in O(1), and
 *  - `hash`: `sha256:<salt hex>:<SHA-256(salt || value) hex>` with a random 128-bit salt.
 * A single salted SHA-256 is enough because a generated secret has 128 bits of entropy (no password
 * to brute-force); comparisons are constant-time over fixed-length digests. A provisioned value
 * (RS_TOKEN_<ID>_VALUE) is the operator's choice and only as strong as they make it.
 */

const encoder = new TextEncoder();

/** The shape of a generated value, `<name>-<32 lowercase hex>` (provisioned values have any shape). */
export const TOKEN_VALUE_PATTERN = /-[0-9a-f]{32}$/;

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let index = 0; index < bytes.length; index += 1) bytes[index] = Number.parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}

async function sha256(...parts: (string | Uint8Array)[]): Promise<Uint8Array> {
  const chunks = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : part));
  const bytes = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(...parts: (string | Uint8Array)[]): Promise<string> {
  return toHex(await sha256(...parts));
}

/** A new secret value for token `name`. */
export function generateTokenValue(name: string): string {
  return `${name}-${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** The row index for a token value: the first 16 hex digits of its SHA-256. */
export async function tokenLookup(value: string): Promise<string> {
  return (await sha256Hex(value)).slice(0, 16);
}

export async function hashToken(value: string, salt: Uint8Array = crypto.getRandomValues(new Uint8Array(16))): Promise<string> {
  return `sha256:${toHex(salt)}:${await sha256Hex(salt, value)}`;
}

/** True when `value` is the secret behind `stored` (constant time in the value). */
export async function verifyTokenHash(value: string, stored: string): Promise<boolean> {
  const [scheme, saltHex, hashHex, ...rest] = stored.split(":");
  if (scheme !== "sha256" || saltHex === undefined || hashHex === undefined || rest.length > 0) return false;
  const salt = fromHex(saltHex);
  const expected = fromHex(hashHex);
  if (!salt || salt.byteLength === 0 || !expected || expected.byteLength !== 32) return false;
  const actual = await sha256(salt, value);
  return crypto.subtle.timingSafeEqual(actual, expected);
}

/** Constant-time comparison of two secrets of any length (compares their SHA-256 digests). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}
