// Deterministic randomness for the reliability scripts. Every random choice derives from a seed and a
// key (e.g. writer, cycle), so a run can be replayed with `--seed`. Record payloads are a pure
// function of (seed, bucket, entry, ts[, variant]): their size comes from a hash of that key and their
// bytes from an AES-256-CTR keystream keyed by it, so any verifier can regenerate them.
import { createCipheriv, createHash } from "node:crypto";

/** sfc32: a small, fast PRNG with 128 bits of state, seeded from sha256 of the key parts. */
export class Rng {
  a: number;
  b: number;
  c: number;
  d: number;

  constructor(...keyParts: readonly (string | number)[]) {
    const digest = createHash("sha256").update(keyParts.map(String).join("\u0000")).digest();
    this.a = digest.readUInt32LE(0);
    this.b = digest.readUInt32LE(4);
    this.c = digest.readUInt32LE(8);
    this.d = digest.readUInt32LE(12) | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32() {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next() {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen item; undefined only when `items` is empty. */
  pick<T>(items: readonly [T, ...T[]]): T;
  pick<T>(items: readonly T[]): T | undefined;
  pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** A random 32-bit seed as 8 hex digits. */
export function randomSeed() {
  return createHash("sha256").update(`${process.pid}:${Date.now()}:${Math.random()}`).digest("hex").slice(0, 8);
}

export const KIB = 1024;
export const MIB = 1024 * 1024;

/**
 * Size profiles, skewed small. `full`: 0 B–1 MiB with ~6% empty records, most ≤ 64 KiB, some around
 * the 128 KiB staged/streamed boundary and ~9% streamed (> 128 KiB, skewed towards the low end) up
 * to exactly 1 MiB.
 */
type SizeDraw = (r: Rng) => number;

/** A size profile: [cumulative probability, draw] bands, the last one at 1. */
type SizeProfile = readonly (readonly [number, SizeDraw])[];

const PROFILES = {
  full: [
    [0.06, () => 0],
    [0.46, (r: Rng) => r.int(1, KIB)],
    [0.8, (r: Rng) => r.int(KIB + 1, 64 * KIB)],
    [0.9, (r: Rng) => r.int(64 * KIB + 1, 128 * KIB)],
    [0.92, (r: Rng) => r.pick([128 * KIB, 128 * KIB + 1, MIB])],
    [1, (r: Rng) => 128 * KIB + 2 + Math.floor((MIB - 128 * KIB - 2) * r.next() ** 2)],
  ],
  /** Batch members: mostly small, now and then one streamed record. */
  batch: [
    [0.08, () => 0],
    [0.7, (r: Rng) => r.int(1, 4 * KIB)],
    [0.95, (r: Rng) => r.int(4 * KIB + 1, 96 * KIB)],
    [1, (r: Rng) => r.int(128 * KIB + 1, 512 * KIB)],
  ],
  /** Soak: small writes only. */
  small: [
    [0.05, () => 0],
    [1, (r: Rng) => r.int(1, 4 * KIB)],
  ],
} satisfies Record<string, SizeProfile>;

export type SizeProfileName = keyof typeof PROFILES;

/** The size of the record (seed, bucket, entry, ts, variant) in the given profile. */
export function sizeOf(profile: SizeProfileName, seed: string, bucket: string, entry: string, ts: number, variant = ""): number {
  const rng = new Rng("size", seed, bucket, entry, ts, variant);
  const u = rng.next();
  for (const [upTo, draw] of PROFILES[profile]) if (u < upTo) return draw(rng);
  return 0;
}

/** The bytes of record (seed, bucket, entry, ts, variant) of `size` bytes. */
export function payloadOf(size: number, seed: string, bucket: string, entry: string, ts: number, variant = ""): Buffer {
  if (size === 0) return Buffer.alloc(0);
  const key = createHash("sha256")
    .update(`payload\u0000${seed}\u0000${bucket}\u0000${entry}\u0000${ts}\u0000${variant}`)
    .digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export const sha256Hex = (data: string | Buffer | Uint8Array): string => createHash("sha256").update(data).digest("hex");
