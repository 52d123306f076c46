/**
 * Compressed bodies for tests of `Content-Encoding` writes, made inside workerd with `node:zlib`.
 */
import { gzipSync, zstdCompressSync } from "node:zlib";

export type Coding = "gzip" | "zstd";
export const CODINGS: Coding[] = ["gzip", "zstd"];

const KIB = 1024;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** `bytes` compressed as one gzip member or one zstd frame (compressible input only for zstd: see zstdRawFrame). */
export const compress = (coding: Coding, bytes: Uint8Array) =>
  new Uint8Array(coding === "gzip" ? gzipSync(bytes) : zstdCompressSync(bytes));

/**
 * `bytes` as one zstd frame of raw (stored) blocks, as a zstd encoder emits incompressible data.
 * Needed because workerd's own zstd compressor fails ("Unexpected end of file") once its output
 * reaches 64 KiB; its decompressor is what the tests exercise.
 */
export function zstdRawFrame(bytes: Uint8Array): Uint8Array {
  const BLOCK = 128 * KIB;
  // Magic number, then a frame header with a 1 MiB window and no content size, then the blocks.
  const parts: Uint8Array[] = [new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50])];
  for (let offset = 0; offset < bytes.byteLength || offset === 0; offset += BLOCK) {
    const block = bytes.subarray(offset, offset + BLOCK);
    const last = offset + BLOCK >= bytes.byteLength ? 1 : 0;
    const header = (block.byteLength << 3) | last; // block type 0: raw
    parts.push(new Uint8Array([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
  }
  return concat(parts);
}

/** Incompressible bytes compressed: gzip as a sender would; zstd as raw blocks (see zstdRawFrame). */
export const compressIncompressible = (coding: Coding, bytes: Uint8Array) =>
  coding === "gzip" ? compress(coding, bytes) : zstdRawFrame(bytes);
