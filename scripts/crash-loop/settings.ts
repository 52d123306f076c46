// The crash loop's options and the fixed shape of its workload (buckets, entries, limits).
import { parseArgs } from "node:util";
import { randomSeed } from "../lib/prng.ts";

export type KillMode = "group" | "workerd" | "term";
export const KILL_MODES: readonly KillMode[] = ["group", "workerd", "term"];

export interface Settings {
  cycles: number;
  seed: string;
  quick: boolean;
  sweep: boolean;
  keep: boolean;
  liveTree: boolean;
  selfTest: boolean;
  kill: KillMode | "mix";
  /** Whole-run budget: generous per cycle, plus the final read-back and the sweep wait. */
  runBudgetMs: number;
}

const USAGE = `usage: npm run crash-loop -- [--cycles N] [--seed S] [--quick] [--sweep|--no-sweep] [--keep]
  --cycles N  kill/restart cycles (default 20; --quick: 3)
  --seed S    seed of the workload and of the kill times (printed; pass it again to replay)
  --quick     3 cycles and no sweep wait (CI)
  --sweep     after the run, restart once more and wait for the sweep alarm, then require 0 orphans
              (default on without --quick)
  --keep      keep the temporary directory (state, journal, server logs)
  --kill K    how a cycle ends: group (SIGKILL the whole server, the default), workerd (SIGKILL only
              the workerd running reduct-edge; npm start must exit by itself, then the rest), term
              (SIGTERM the group: a graceful stop, SIGKILL after 5 s), or mix (one of the three per cycle, seeded)
  --self-test one cycle, then four faults are injected behind the verifier's back (an unjournaled
              write, a journaled write never sent, an unjournaled label change, a journaled delete
              never sent); passes only if it reports exactly those (phantom, lost, altered, resurrected)
  --live-tree run the repository itself instead of a snapshot copy taken at the start (each restart
              then bundles whatever the tree holds at that moment)`;

/** The settings of `argv`; prints the usage and exits for --help; throws on a bad value. */
export function parseSettings(argv: string[]): Settings {
  const { values: options } = parseArgs({
    args: argv,
    options: {
      cycles: { type: "string" },
      seed: { type: "string" },
      quick: { type: "boolean", default: false },
      sweep: { type: "boolean" },
      keep: { type: "boolean", default: false },
      "live-tree": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
      "self-test": { type: "boolean", default: false },
      kill: { type: "string", default: "group" },
    },
  });
  if (options.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const cycles = options["self-test"] ? 1 : Number(options.cycles ?? (options.quick ? 3 : 20));
  if (!Number.isInteger(cycles) || cycles < 1 || cycles > 500) throw new Error(`--cycles must be 1..500, got ${options.cycles}`);
  const kill = options.kill as Settings["kill"];
  if (![...KILL_MODES, "mix"].includes(kill)) throw new Error(`--kill must be group, workerd, term or mix, got ${options.kill}`);
  return {
    cycles,
    seed: options.seed ?? randomSeed(),
    quick: options.quick,
    sweep: options.sweep ?? !options.quick,
    keep: options.keep,
    liveTree: options["live-tree"],
    selfTest: options["self-test"],
    kill,
    runBudgetMs: (cycles * 120 + 420) * 1000,
  };
}

export const KILL_MIN_MS = 1_000;
export const KILL_MAX_MS = 15_000;
export const ALIVE_LIMIT_MS = 30_000;
export const ALIVE_ABORT_MS = 90_000;
export const REQUEST_TIMEOUT_MS = 60_000;
/** An interrupted streamed upload holds its timestamp (425) for its lease; after this it must be gone. */
export const PENDING_LIMIT_MS = 130_000;
/** Stats may lag the index briefly (documented ≤ 1 s); re-read them this long before failing. */
export const STATS_RETRY_MS = 1_000;
/** Records read back one by one after each cycle besides the ones the cycle touched. */
export const READBACK_SAMPLE = 24;

export const BASE_TS = 1_700_000_000_000_000;
export const NONE_BUCKETS = ["cl-a", "cl-b"];
export const ENTRIES = ["e0", "e1", "grp/e2", "grp/e3"];
export const FIFO_BUCKET = "cl-fifo";
export const FIFO_ENTRIES = ["f0", "f1"];
export const FIFO_QUOTA = 5_000_000;
export const BUCKET_SETTINGS: Record<string, Record<string, string | number>> = {
  "cl-a": {},
  "cl-b": { max_block_records: 48 },
  [FIFO_BUCKET]: { quota_type: "FIFO", quota_size: FIFO_QUOTA, max_block_records: 6, max_block_size: 1_000_000 },
};
export const MAX_BLOCK_SIZE: Record<string, number> = { "cl-a": 64_000_000, "cl-b": 64_000_000, [FIFO_BUCKET]: 1_000_000 };
export const CONTENT_TYPES: readonly [string, ...string[]] = [
  "application/octet-stream",
  "text/plain",
  "image/jpeg",
  "application/json",
];

/** Descriptor bytes of the records that may be in flight at once (the quota counts content lengths only). */
export const FIFO_ALLOWANCE = FIFO_ENTRIES.length * 260;

export const VIOLATION_KINDS = [
  "lost",
  "altered",
  "phantom",
  "resurrected",
  "rejected-trace",
  "indeterminate-bad",
  "stuck-425",
  "server-5xx",
  "unexpected-status",
  "duplicate-accepted",
  "listing",
  "stats",
  "fifo-quota",
  "fifo-order",
  "alive",
  "lingering",
  "index",
  "orphans",
  "log",
] as const;

export type ViolationKind = (typeof VIOLATION_KINDS)[number];
