/**
 * The bench's model in one place: a run's scale, the context every workload sees, units (a
 * workload as index.ts lists it), measure specs (what lib/measure.ts runs), results and targets
 * (as written to bench/results/*.json).
 */
import type { HttpResponse, RequestSpec } from "../../scripts/lib/http-client.ts";
import type { PerThousand, Prices } from "./cost.ts";
import type { Counters } from "./counters.ts";
import type { LoadSummary, ResponseChecks } from "./http-load.ts";
import type { RssSample } from "./proc.ts";
import type { BenchServer, serverDefinitions } from "./servers.ts";

/** A key of serverDefinitions(). */
export type ServerName = keyof ReturnType<typeof serverDefinitions>;

/** A W3 size: its label, bytes per record and records to send. */
export type LargeSize = readonly [label: string, size: number, count: number];

/** How much a run does (bench/run.ts SCALES: quick or full). */
export interface Scale {
  requests: number;
  records: number;
  batches: number;
  large: readonly LargeSize[];
  fifoBatch: { quota: number; factor: number };
  fifoSingle: { quota: number; factor: number; blockRecords: number };
  scan: { records: number; maxSeconds: number };
  rounds: number;
  maxSeconds: number;
  largeMaxSeconds: number;
  budgetSeconds: number;
}

/** The endpoints workloads/probes.ts tries. */
export type FeatureName =
  | "batchV1"
  | "batchV2"
  | "queryV1"
  | "queryV2"
  | "labelsV1"
  | "labelsV2"
  | "removeQueryV2"
  | "removeQueryV1";

/** One probe's answer: available, or why not. */
export type FeatureProbe = { ok: true } | { ok: false; reason: string };

export type Features = Partial<Record<FeatureName, FeatureProbe>>;

/** What a write workload left for the read/update/remove workloads: timestamps [first, stop). */
export interface WrittenData {
  bucket: string;
  entry: string;
  first: number;
  stop: number;
  records: number;
}

export type SharedData = Partial<Record<"w1" | "w2v1" | "w2v2", WrittenData>>;

/** What every unit, measure and run step sees. */
export interface Context {
  quick: boolean;
  scale: Scale;
  connections: number;
  /** The started servers (run.ts starts every server a selected unit names). */
  servers: Partial<Record<ServerName, BenchServer>>;
  prices: Prices;
  shared: SharedData;
  features: Features;
  log: (message: string) => void;
  progress: (message: string) => void;
}

/** A lane of a session workload (see runSessions in http-load.ts). */
export type Session = (
  lane: number,
  call: (spec: RequestSpec, options?: ResponseChecks) => Promise<HttpResponse | undefined>,
  timeLeft: () => number,
  untimed: (spec: RequestSpec) => Promise<HttpResponse>,
) => Promise<void>;

/** Fields a workload adds to its result besides the measured ones. */
export interface ResultExtras {
  /** W5/W5s: the bucket's usage against its quota. */
  quota?: QuotaSummary;
  /** W7scan: the selective query's timings. */
  scan?: ScanSummary;
  /** start: fresh-isolate start times (workloads/startup.ts). */
  startup?: StartupSummary;
  /** W7buckets: per-bucket rates (workloads/buckets.ts). */
  buckets?: BucketsSummary;
}

/** The product bundle's bytes by origin (esbuild metafile of `wrangler deploy --dry-run`). */
export interface BundleComposition {
  bytes: number;
  gzipBytes: number;
  zod: number;
  zodLocales: number;
  hono: number;
  src: number;
  other: number;
}

/** One bundle's start: medians over fresh workerd processes. */
export interface StartupVariant {
  name: string;
  bytes: number;
  gzipBytes: number;
  firstAnswerMs: number;
  firstAnswerMinMs: number;
  firstAnswerMaxMs: number;
  workerdCpuMs: number;
  /** This process (Miniflare: it parses the script to find its modules, writes the config). */
  harnessCpuMs: number;
  warmRequestMs: number;
}

export interface StartupSummary {
  rounds: number;
  variants: StartupVariant[];
  bundle?: BundleComposition;
}

/** W7buckets: many buckets written at once; rates over the common window. */
export interface BucketsSummary {
  buckets: number;
  windowSeconds: number;
  /** Records each bucket had acknowledged when the window closed. */
  perBucketRecords?: number[];
  minRate: number;
  medianRate: number;
  maxRate: number;
  jain: number;
}

/** The options of a measure spec that both kinds share (see measureTogether). */
interface SpecOptions extends ResponseChecks {
  /** Overrides the unit's title. */
  title?: string;
  connections?: number;
  maxSeconds: number;
  warmup?: { total: number; makeRequest: (index: number) => RequestSpec };
  rss?: boolean;
  keepAlive?: boolean;
  beforeLoad?: () => void | Promise<void>;
  afterLoad?: () => void | Promise<void>;
  settle?: { minMs?: number; quietMs?: number; maxMs?: number };
  objects?: string[];
  compareTo?: string[];
  expectedRecords?: number;
  notes?: string[];
  extra?: ResultExtras;
}

/** Closed loop: `total` requests from `makeRequest(i)`. */
export interface LoadUnitSpec extends SpecOptions {
  total: number;
  makeRequest: (index: number) => RequestSpec;
  session?: undefined;
}

/** Lanes with their own request sequence (never split into rounds). */
export interface SessionUnitSpec extends SpecOptions {
  session: Session;
  total?: undefined;
  makeRequest?: undefined;
}

/** What a unit's `spec(ctx)` returns: a measure spec without its id and server. */
export type UnitSpec = LoadUnitSpec | SessionUnitSpec;

/** A measure spec as measureTogether takes it. */
export type Spec = UnitSpec & { id: string; title: string; server: BenchServer };

/** A workload (see index.ts). */
export interface Unit {
  id: string;
  title: string;
  server: ServerName;
  /** Undefined when the server has what the unit needs, else the reason. */
  requires?: (features: Features) => string | undefined;
  fullOnly?: boolean;
  prepare?: (ctx: Context) => Promise<void>;
  spec: (ctx: Context) => UnitSpec;
  finish?: (ctx: Context, result: MeasuredResult) => void;
}

/** Unit ids measured together, interleaved in `rounds`. */
export interface Step {
  ids: string[];
  rounds?: number;
}

export interface QuotaSummary {
  quotaBytes: number;
  maxUsageBytes: number;
  finalUsageBytes: number;
  samples: number;
  overQuotaBytes: number;
  oneBlockBytes: number;
  withinOneBlock: boolean;
}

export interface ScanSummary {
  firstMatchMs: number;
  reads: number;
  found: number;
  emptyReads: number;
  ended: string;
  /** Latencies of the concurrent GETs; replaced by `concurrentGet` when the unit finishes. */
  getMs?: number[];
  readMs: number[];
  readErrors: string[];
  getErrors: string[];
  concurrentGet?: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
}

/** A Durable Object SQL statement's share per record. */
export interface StatementShare {
  statement: string;
  execsPerRecord: number;
  rowsWrittenPerRecord: number;
  rowsReadPerRecord: number;
}

export interface MeasuredResult extends ResultExtras {
  id: string;
  title: string;
  status: "measured";
  server: string;
  connections: number;
  rounds: number;
  records: number;
  bytes: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
  requests: number;
  latencyMs: LoadSummary["latencyMs"];
  errors: number;
  errorSamples: string[];
  stoppedByTime: boolean;
  counters: Counters;
  perThousand: PerThousand;
  costPerMillion: { total: number; breakdown: Record<string, number> };
  sqlTop: StatementShare[];
  /** Records per second of run time; only meaningful for a single slice. */
  timeline: number[] | undefined;
  /** workerd user+system CPU over this workload's slices (includes the local R2/D1 simulators). */
  serverCpuMsPerRecord: number;
  /** This process (the load generator) while the load ran: share of one core. */
  clientCpuShare: number;
  rss: RssSample | undefined;
  compareTo: string[];
  notes: string[];
}

/** A unit that produced no numbers, and why. */
export interface UnmeasuredResult {
  id: string;
  title: string;
  status: "not implemented" | "skipped" | "failed";
  reason: string;
}

export type Result = MeasuredResult | UnmeasuredResult;

/** A target of issue 6: met or missed, or why it cannot be told yet. */
export type Target =
  | { target: string; evaluable: true; value: string; met: boolean }
  | { target: string; evaluable: false; detail: string };

/** The machine a run was on (run.ts). */
export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  os: string;
  node: string;
  miniflare: string;
  workerd: string;
  wrangler: string;
  commit: string;
}

/** bench/results/<stamp>-<mode>.json. */
export interface ResultsFile {
  mode: "quick" | "full";
  finishedAt: string;
  seconds: number;
  machine: Machine;
  connections: number;
  scale: Scale;
  prices: Prices;
  features: Features;
  results: Result[];
  targets: Target[];
  report: string;
}

/** The started server `name`; run.ts starts every server a selected unit names before its spec runs. */
export function serverOf(ctx: Pick<Context, "servers">, name: ServerName): BenchServer {
  const server = ctx.servers[name];
  if (!server) throw new Error(`server ${name} is not running`);
  return server;
}
