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
import { percentile } from "./stats.ts";

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

const median = (items, key) =>
  percentile(
    items.map((item) => item[key]),
    50,
  );
const pct = (x) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
const mib = (kib) => (kib / MIB).toFixed(1);

/**
 * Figures of one run. `samples`: { atS, pid, rssKiB, anonKiB, fds } from t = 0 (start of the
 * load) every 10 s; `gcs`: [{ what: "reference" | "end", before, after }] with `heap.user` in KiB.
 * Windows are medians of 3 samples: `reference` ends at `referenceS` (before the GC forced there),
 * `half` starts at half the run, `end` is the last 3.
 */
export function memoryFigures({ samples, gcs = [], durationS, referenceS }) {
  if (samples.length < 6) return undefined;
  const upToReference = samples.filter((s) => s.atS > 0 && s.atS <= referenceS);
  const reference = upToReference.slice(-3);
  const half = samples.filter((s) => s.atS >= durationS / 2).slice(0, 3);
  const end = samples.slice(-3);
  if (reference.length === 0 || half.length === 0) return undefined;
  const at = (window) => ({
    fromS: window[0].atS,
    toS: window[window.length - 1].atS,
    rssKiB: median(window, "rssKiB"),
    anonKiB: median(window, "anonKiB"),
    fds: median(window, "fds"),
  });
  const figures = {
    start: { rssKiB: samples[0].rssKiB, anonKiB: samples[0].anonKiB, fds: samples[0].fds },
    reference: at(reference),
    half: at(half),
    end: at(end),
    samePid: new Set(samples.map((s) => s.pid)).size === 1,
    rssGrowth: 0,
    anonGrowth: 0,
    rssLastHalf: 0,
    fdsGrowth: 0,
    worker: undefined as Record<string, number> | undefined,
  };
  const growth = (from, to, key) => (to[key] - from[key]) / Math.max(from[key], 1);
  figures.rssGrowth = growth(figures.reference, figures.end, "rssKiB");
  figures.anonGrowth = growth(figures.reference, figures.end, "anonKiB");
  figures.rssLastHalf = growth(figures.half, figures.end, "rssKiB");
  figures.fdsGrowth = growth(figures.reference, figures.end, "fds");
  const referenceGc = gcs.find((gc) => gc.what === "reference");
  const endGc = gcs.find((gc) => gc.what === "end");
  if (referenceGc?.after?.heap?.user && endGc?.after?.heap?.user) {
    figures.worker = {
      referenceUsedKiB: referenceGc.after.heap.user.used,
      endUsedKiB: endGc.after.heap.user.used,
      referenceBuffersKiB: referenceGc.after.heap.user.backing,
      endBuffersKiB: endGc.after.heap.user.backing,
      endRssAfterGcKiB: endGc.after.rssKiB,
    };
  }
  return figures;
}

/**
 * The verdict: `{ ok, checks: [{ what, ok, text }] }`. `baseline`: memoryFigures of a no-op run of
 * the same stack, load and length (or undefined). `inspected`: the Worker's heap was to be read
 * (its checks fail when the figures are missing).
 */
export function memoryVerdict(figures, baseline, { inspected = false } = {}) {
  const checks = [];
  const check = (what, ok, text) => checks.push({ what, ok, text });
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
export function rssLine(figures) {
  return (
    `RSS ${mib(figures.start.rssKiB)} (start) → ${mib(figures.reference.rssKiB)} (${figures.reference.toS} s) → ` +
    `${mib(figures.half.rssKiB)} (${figures.half.fromS} s) → ${mib(figures.end.rssKiB)} MiB (end); ` +
    `reference → end ${pct(figures.rssGrowth)} (anon ${mib(figures.reference.anonKiB)} → ${mib(figures.end.anonKiB)} MiB, ` +
    `${pct(figures.anonGrowth)}), last half ${pct(figures.rssLastHalf)}`
  );
}
