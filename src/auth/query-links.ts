/**
 * Query-link signatures. A link carries its parameters in the clear (base64url JSON) plus an
 * HMAC-SHA256 over them. The key is derived from the store's random link secret (D1) and the
 * issuing token's stored hash, so a link cannot be forged, and rotating or deleting the token
 * changes or removes the key: every link it issued stops verifying.
 */

const encoder = new TextEncoder();

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

async function hmac(key: Uint8Array | string, data: Uint8Array | string): Promise<Uint8Array> {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, typeof data === "string" ? encoder.encode(data) : data));
}

/** The signing key of one issuer: bound to the store secret, the token name and its current secret. */
async function issuerKey(storeSecret: string, issuer: string, issuerSecret: string): Promise<Uint8Array> {
  return hmac(storeSecret, `query-link\n${issuer}\n${issuerSecret}`);
}

export async function signLink(storeSecret: string, issuer: string, issuerSecret: string, payload: string): Promise<string> {
  return toBase64Url(await hmac(await issuerKey(storeSecret, issuer, issuerSecret), payload));
}

/** True when `signature` is the issuer's signature of `payload` (constant time). */
export async function verifyLink(
  storeSecret: string,
  issuer: string,
  issuerSecret: string,
  payload: string,
  signature: string,
): Promise<boolean> {
  const given = fromBase64Url(signature);
  const expected = await hmac(await issuerKey(storeSecret, issuer, issuerSecret), payload);
  if (!given || given.byteLength !== expected.byteLength) return false;
  return crypto.subtle.timingSafeEqual(given, expected);
}
