/**
 * Percent-encoding of entry and label names in batch v2 headers: every UTF-8 byte that is
 * an HTTP token char is kept, every other byte becomes `%XX` (upper-case hex). Decoding is lenient
 * like the reference: `%XX` is decoded, any other char is taken literally, the result must be UTF-8.
 * One deviation: `%` itself is encoded (`%25`) although it is a token char, because a literal `%`
 * could not be decoded back (`100%` would fail); every client decoder reads `%25` as `%`.
 */

const KEPT_CHAR = /^[!#$&'*+\-.^_`|~0-9A-Za-z]$/;
const HEX_RADIX = 16;

const encoder = new TextEncoder();
/** `ignoreBOM` keeps a leading U+FEFF, which is part of the name, not a byte order mark. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Encodes a name for `x-reduct-entries` / `x-reduct-labels`. */
export function encodeName(name: string): string {
  let encoded = "";
  for (const byte of encoder.encode(name)) {
    const char = String.fromCharCode(byte);
    encoded += KEPT_CHAR.test(char) ? char : `%${byte.toString(HEX_RADIX).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

export type DecodeFailure = "encoding" | "utf8";

/**
 * Decodes a percent-encoded name (a ByteString: one char per byte). Returns the name, or why it failed:
 * `encoding` for a `%` not followed by two hex digits, `utf8` when the bytes are not UTF-8.
 */
export function decodeName(encoded: string): { ok: true; name: string } | { ok: false; failure: DecodeFailure } {
  const bytes: number[] = [];
  for (let pos = 0; pos < encoded.length; ) {
    if (encoded[pos] === "%") {
      const hex = encoded.slice(pos + 1, pos + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, failure: "encoding" };
      bytes.push(Number.parseInt(hex, HEX_RADIX));
      pos += 3;
    } else {
      bytes.push(encoded.charCodeAt(pos) & 0xff);
      pos++;
    }
  }
  try {
    return { ok: true, name: strictDecoder.decode(new Uint8Array(bytes)) };
  } catch {
    return { ok: false, failure: "utf8" };
  }
}
