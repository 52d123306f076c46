// The soak's memory verdict (scripts/soak.ts), from its samples (every 10 s: RSS, anonymous RSS,
// open fds of the workerd running the Worker) and, where workerd's inspector is reachable, the V8
// heap of the Worker's isolate after forced full GCs (scripts/lib/inspector.ts).
//
// Why not a plain RSS threshold: the local workerd's RSS grows for many minutes under steady load
// even for a no-op Worker (V8 heaps of Miniflare's own workers sized up lazily, freed memory kept by
// workerd's allocator), so "RSS +20 %" fails the runtime itself. What would show a leak of
// reduct-edge:
//   1. the Worker isolate's JS heap still in use after a full GC (its Worker code, the bucket
//      objects and the block cache live there) growing between minute 2 and the end;
//   2. its ArrayBuffers after the final GC (10 s after the load, when idle blocks are sealed) above
//      the block cache's bound (src/api/block-cache.ts, 32 MiB) plus some slack;
//   3. RSS still growing in the last half of the run (a leak grows with the work done; allocator
//      and heap sizing level off): at most LIMITS.rssLastHalfOverBaseline more than the no-op
//      Worker's own last-half growth under the same stack and load (the soak's default for runs of
//      ≥ 4 minutes), or without a baseline at most LIMITS.rssLastHalf (measured: the no-op itself
//      grows +26 % over the last half of a 10-minute run, reduct-edge +9 % over the last half of a
//      20-minute run);
//   4. open fds growing.
import type { HeapFigures } from "./inspector.ts";
import { percentile } from "./stats.ts";

/** One sample of the workerd running the Worker (what memoryFigures reads of it). */
export interface MemorySample {
  atS: number;
  pid?: number | undefined;
  rssKiB: number;
  anonKiB: number;
  fds: number;
}

/** Process figures and V8 heaps around a forced GC (the process figures are missing when it was gone). */
export interface GcSnapshot {
  rssKiB?: number | undefined;
  /** The Worker isolate's heap (a heapUsage() result, or what a --json file kept of it). */
  heap?: { user?: HeapFigures | undefined } | undefined;
}

/** A forced full GC: at the reference time or after the load. */
export interface GcRecord {
  what: "reference" | "end" | string;
  before?: GcSnapshot;
  after?: GcSnapshot;
}

export interface FigureOptions {
  samples: readonly MemorySample[];
  gcs?: readonly GcRecord[];
  durationS: number;
  referenceS: number;
}

type Window = { fromS: number; toS: number; rssKiB: number; anonKiB: number; fds: number };

/** The Worker isolate's heap after the reference and the final GC (KiB). */
export interface WorkerHeapFigures {
  referenceUsedKiB: number;
  endUsedKiB: number;
  referenceBuffersKiB: number;
  endBuffersKiB: number;
  endRssAfterGcKiB: number | undefined;
}

export interface MemoryFigures {
  start: { rssKiB: number; anonKiB: number; fds: number };
  reference: Window;
  half: Window;
  end: Window;
  samePid: boolean;
  rssGrowth: number;
  anonGrowth: number;
  rssLastHalf: number;
  fdsGrowth: number;
  worker: WorkerHeapFigures | undefined;
}

export interface MemoryCheck {
  what: string;
  ok: boolean;
  text: string;
}

export interface MemoryVerdict {
  ok: boolean;
  checks: MemoryCheck[];
}

type Figure = "rssKiB" | "anonKiB" | "fds";

const MIB = 1024;

export const LIMITS = {
  /** Open fds, reference → end. */
  fdsGrowth: 0.2,
  /** JS heap in use after a forced full GC of the Worker's isolate, reference → end (MiB). */
  workerHeapGrowthMiB: 4,
  /** ArrayBuffers of the Worker's isolate after the final GC (MiB): the block cache holds ≤ 32 MiB. */
  workerBuffersMiB: 40,
  /** RSS growth over the last half of the run, without a baseline. */
  rssLastHalf: 0.2,
  /** With a baseline: RSS last-half growth at most this much above the no-op's (fraction points). */
  rssLastHalfOverBaseline: 0.1,
};

const median = (items: readonly MemorySample[], key: Figure): number =>
  percentile(
    items.map((item) => item[key]),
    50,
  );
const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
const mib = (kib: number): string => (kib / MIB).toFixed(1);

/**
 * Figures of one run. `samples`: { atS, pid, rssKiB, anonKiB, fds } from t = 0 (start of the
 * load) every 10 s; `gcs`: [{ what: "reference" | "end", before, after }] with `heap.user` in KiB.
 * Windows are medians of 3 samples: `reference` ends at `referenceS` (before the GC forced there),
 * `half` starts at half the run, `end` is the last 3.
 */
export function memoryFigures({ samples, gcs = [], durationS, referenceS }: FigureOptions): MemoryFigures | undefined {
  const first = samples[0];
  if (samples.length < 6 || first === undefined) return undefined;
  const upToReference = samples.filter((s) => s.atS > 0 && s.atS <= referenceS);
  const reference = upToReference.slice(-3);
  const half = samples.filter((s) => s.atS >= durationS / 2).slice(0, 3);
  const end = samples.slice(-3);
  if (reference.length === 0 || half.length === 0) return undefined;
  // Every window holds at least one sample (checked above for reference and half; end: ≥ 6 samples).
  const at = (window: readonly MemorySample[]): Window => ({
    fromS: window[0]?.atS ?? Number.NaN,
    toS: window[window.length - 1]?.atS ?? Number.NaN,
    rssKiB: median(window, "rssKiB"),
    anonKiB: median(window, "anonKiB"),
    fds: median(window, "fds"),
  });
  const figures: MemoryFigures = {
    start: { rssKiB: first.rssKiB, anonKiB: first.anonKiB, fds: first.fds },
    reference: at(reference),
    half: at(half),
    end: at(end),
    samePid: new Set(samples.map((s) => s.pid)).size === 1,
    rssGrowth: 0,
    anonGrowth: 0,
    rssLastHalf: 0,
    fdsGrowth: 0,
    worker: undefined,
  };
  const growth = (from: Window, to: Window, key: Figure): number => (to[key] - from[key]) / Math.max(from[key], 1);
  figures.rssGrowth = growth(figures.reference, figures.end, "rssKiB");
  figures.anonGrowth = growth(figures.reference, figures.end, "anonKiB");
  figures.rssLastHalf = growth(figures.half, figures.end, "rssKiB");
  figures.fdsGrowth = growth(figures.reference, figures.end, "fds");
  const referenceGc = gcs.find((gc) => gc.what === "reference");
  const endGc = gcs.find((gc) => gc.what === "end");
  const referenceHeap = referenceGc?.after?.heap?.user;
  const endHeap = endGc?.after?.heap?.user;
  if (referenceHeap && endHeap) {
    figures.worker = {
      referenceUsedKiB: referenceHeap.used,
      endUsedKiB: endHeap.used,
      referenceBuffersKiB: referenceHeap.backing,
      endBuffersKiB: endHeap.backing,
      endRssAfterGcKiB: endGc?.after?.rssKiB,
    };
  }
  return figures;
}

/**
 * The verdict: `{ ok, checks: [{ what, ok, text }] }`. `baseline`: memoryFigures of a no-op run of
 * the same stack, load and length (or undefined). `inspected`: the Worker's heap was to be read
 * (its checks fail when the figures are missing).
 */
export function memoryVerdict(
  figures: MemoryFigures,
  baseline: MemoryFigures | undefined,
  { inspected = false }: { inspected?: boolean } = {},
): MemoryVerdict {
  const checks: MemoryCheck[] = [];
  const check = (what: string, ok: boolean, text: string) => checks.push({ what, ok, text });
  check("same workerd process", figures.samePid, figures.samePid ? "yes" : "NO: the workerd pid changed (it restarted)");
  check(
    "open fds",
    figures.fdsGrowth < LIMITS.fdsGrowth,
    `${figures.reference.fds} → ${figures.end.fds} (${pct(figures.fdsGrowth)}; limit ${pct(LIMITS.fdsGrowth)})`,
  );
  if (figures.worker) {
    const w = figures.worker;
    const grew = (w.endUsedKiB - w.referenceUsedKiB) / MIB;
    check(
      "Worker JS heap after full GC",
      grew <= LIMITS.workerHeapGrowthMiB,
      `${mib(w.referenceUsedKiB)} → ${mib(w.endUsedKiB)} MiB (${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB; limit +${LIMITS.workerHeapGrowthMiB} MiB)`,
    );
    check(
      "Worker ArrayBuffers after full GC",
      w.endBuffersKiB / MIB <= LIMITS.workerBuffersMiB,
      `${mib(w.referenceBuffersKiB)} → ${mib(w.endBuffersKiB)} MiB (limit ${LIMITS.workerBuffersMiB} MiB; block cache ≤ 32 MiB)`,
    );
  } else if (inspected) {
    check("Worker JS heap after full GC", false, "not measured: a forced GC or heap read through the inspector failed");
  }
  const rssText = `${mib(figures.half.rssKiB)} → ${mib(figures.end.rssKiB)} MiB over the last half (${pct(figures.rssLastHalf)})`;
  if (baseline) {
    const over = figures.rssLastHalf - baseline.rssLastHalf;
    check(
      "RSS plateau vs no-op baseline",
      over <= LIMITS.rssLastHalfOverBaseline,
      `${rssText}; no-op ${mib(baseline.half.rssKiB)} → ${mib(baseline.end.rssKiB)} MiB (${pct(baseline.rssLastHalf)}); ` +
        `difference ${(over * 100).toFixed(1)} points (limit ${(LIMITS.rssLastHalfOverBaseline * 100).toFixed(0)})`,
    );
  } else {
    check("RSS plateau", figures.rssLastHalf < LIMITS.rssLastHalf, `${rssText} (limit ${pct(LIMITS.rssLastHalf)})`);
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/** One line of raw RSS figures: start, reference (minute 2), half, end, and the growths. */
export function rssLine(figures: MemoryFigures): string {
  return (
    `RSS ${mib(figures.start.rssKiB)} (start) → ${mib(figures.reference.rssKiB)} (${figures.reference.toS} s) → ` +
    `${mib(figures.half.rssKiB)} (${figures.half.fromS} s) → ${mib(figures.end.rssKiB)} MiB (end); ` +
    `reference → end ${pct(figures.rssGrowth)} (anon ${mib(figures.reference.anonKiB)} → ${mib(figures.end.anonKiB)} MiB, ` +
    `${pct(figures.anonGrowth)}), last half ${pct(figures.rssLastHalf)}`
  );
}
