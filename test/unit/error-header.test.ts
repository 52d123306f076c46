import { describe, expect, it } from "vitest";
import { headerSafeMessage } from "../../src/errors";

describe("x-reduct-error text", () => {
  it.each([
    ["Bucket 'b' is not found", "Bucket 'b' is not found"],
    ["Invalid entry encoding in header name: 'foo%ZZ'", "Invalid entry encoding in header name: 'foo%ZZ'"],
    ["value ±5", "value %C2%B15"],
    ["Entry 'bü' is bad", "Entry 'b%C3%BC' is bad"],
    ["tab\there", "tab%09here"],
    ["line\r\nbreak", "line%0D%0Abreak"],
    ["del\x7f", "del%7F"],
    ["emoji 😀", "emoji %F0%9F%98%80"],
    ["", ""],
  ])("%j → %j", (message, header) => {
    expect(headerSafeMessage(message)).toBe(header);
    expect(() => new Headers({ "x-reduct-error": headerSafeMessage(message) })).not.toThrow();
  });

  it("is a legal header value for any string and decodes back to the message", () => {
    for (let code = 0; code < 0x800; code++) {
      const message = `m${String.fromCharCode(code)}m`;
      const header = headerSafeMessage(message);
      expect(header).toMatch(/^[\x20-\x7e]*$/);
      if (!message.includes("%")) expect(decodeURIComponent(header)).toBe(message);
    }
  });
});
