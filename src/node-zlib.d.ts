/**
 * The part of workerd's `node:zlib` (enabled by the `nodejs_compat` flag) this Worker uses. The
 * Worker is not typed against Node's own declarations, whose globals would hide the runtime's.
 */
declare module "node:zlib" {
  /** A decompressor: a Node Duplex, bytes in on its writable side, decoded bytes out of its readable side. */
  export interface Decompressor extends AsyncIterable<Uint8Array> {
    readonly destroyed: boolean;
    write(chunk: Uint8Array): boolean;
    end(): void;
    destroy(error?: Error): void;
    once(event: "drain" | "close", listener: () => void): void;
    off(event: "drain" | "close", listener: () => void): void;
  }
  export function createGunzip(): Decompressor;
  export function createZstdDecompress(): Decompressor;
  /** A compressor has the same shape, plain bytes in, compressed bytes out, and can flush what it holds. */
  export interface Compressor extends Decompressor {
    flush(kind: number, callback: () => void): void;
  }
  export function createZstdCompress(options?: { chunkSize?: number }): Compressor;
  export function gzipSync(data: Uint8Array): Uint8Array;
  export function zstdCompressSync(data: Uint8Array, options?: { params?: Record<number, number> }): Uint8Array;
  export const constants: { readonly ZSTD_c_checksumFlag: number; readonly ZSTD_e_flush: number };
}
