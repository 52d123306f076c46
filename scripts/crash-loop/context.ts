// The state of one crash-loop run, created once by main.ts and passed to the workload and the
// verifier: nothing of a run lives at module level, so each piece can be read (and tested) alone.
import { type Settings, VIOLATION_KINDS, type ViolationKind } from "./settings.ts";

export interface Violation {
  kind: ViolationKind;
  detail: string;
  key: string | undefined;
  cycle: number;
}

/** What the verifier counted over the run (for the summary). */
export interface VerifyTotals {
  lost: number;
  altered: number;
  phantoms: number;
  indeterminatePresent: number;
  indeterminateAbsent: number;
  evicted: number;
  readbacks: number;
}

export interface RunContext {
  readonly settings: Settings;
  readonly startedAt: number;
  /** The cycle running now; cycles + 1 during the final verification. */
  cycle: number;
  readonly violations: Violation[];
  readonly totals: VerifyTotals;
  /** Largest FIFO bucket size seen above its quota (bytes; negative while below). */
  fifoMaxOver: number;
  /** Most R2 objects neither the index nor the garbage queue knew, at any inspection. */
  maxUntracked: number;
  /** The last timestamp written per "bucket/entry" (each writer owns its entries). */
  readonly lastTs: Map<string, number>;
  /** Counter behind every record's `n` label. */
  recordSeq: number;
}

export function createRunContext(settings: Settings): RunContext {
  return {
    settings,
    startedAt: Date.now(),
    cycle: 0,
    violations: [],
    totals: { lost: 0, altered: 0, phantoms: 0, indeterminatePresent: 0, indeterminateAbsent: 0, evicted: 0, readbacks: 0 },
    fifoMaxOver: Number.NEGATIVE_INFINITY,
    maxUntracked: 0,
    lastTs: new Map(),
    recordSeq: 0,
  };
}

export const elapsed = (ctx: RunContext): string => `${((Date.now() - ctx.startedAt) / 1000).toFixed(1)} s`;

export function log(ctx: RunContext, ...args: unknown[]): void {
  console.log(`crash-loop [${elapsed(ctx)}]`, ...args);
}

/** Records a violation of the current cycle (the first 60 are printed as they happen). */
export function violation(ctx: RunContext, kind: ViolationKind, detail: string, key?: string): void {
  if (!VIOLATION_KINDS.includes(kind)) throw new Error(`unknown violation kind ${kind}`);
  ctx.violations.push({ kind, detail, key, cycle: ctx.cycle });
  if (ctx.violations.length <= 60) console.log(`crash-loop: VIOLATION ${kind} (cycle ${ctx.cycle}): ${detail}`);
}
