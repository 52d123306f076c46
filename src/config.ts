/**
 * RS_* environment → one validated, typed config. Variables follow ReductStore's names where the
 * concept exists; `RS_MAX_RECORD_SIZE` is ours (Cloudflare caps request bodies). An invalid value is
 * reported naming the variable, and the Worker then refuses storage requests instead of guessing.
 */
import { z } from "zod";

export type QuotaType = "NONE" | "FIFO" | "HARD";

export interface BucketSettings {
  max_block_size: number;
  max_block_records: number;
  quota_type: QuotaType;
  quota_size: number;
}

export type AuthMode =
  /**
   * `initTokenProvisioned`: true for RS_API_TOKEN (the row always follows the env value), false for
   * RS_INIT_API_TOKEN (a normal token created with that value when missing, then editable).
   */
  | { kind: "token"; initToken: string; initTokenProvisioned: boolean }
  | { kind: "disabled" }
  /** Deployed without a token and without an explicit opt-out: refuse everything but /alive. */
  | { kind: "unconfigured" };

export interface Config {
  auth: AuthMode;
  instanceName: string;
  instanceRole: "STANDALONE";
  /** `RS_API_BASE_PATH` normalised to start and end with `/`; the API lives at `${basePath}api/v1`. */
  basePath: string;
  corsAllowOrigins: string[];
  bucketDefaults: BucketSettings;
  /** Largest record body accepted (bytes); larger ones get 413 before anything is stored. */
  maxRecordBytes: number;
  /** Batch read limits; query directives may lower or raise them within MAX_BATCH_* caps. */
  batch: { maxRecords: number; maxBytes: number; maxMetadataBytes: number };
  logLevel: LogLevel;
  /** How long a request body may send nothing before it is refused with 400 (ms). */
  ioTimeoutMs: number;
  /** The `$system` bucket: whether the server writes events, its FIFO quota, how often audit flushes. */
  systemEvents: { enabled: boolean; quotaBytes: number; flushIntervalMs: number; usageIntervalMs: number };
  /** Where bucket objects live: a jurisdiction for all of them, a location hint for new ones. */
  placement: { jurisdiction?: Jurisdiction; locationHint?: LocationHint };
  /** Rows one replication's log keeps before dropping its oldest. */
  replicationLogSize: number;
}

/** Durable Object jurisdictions: objects (and their SQLite) never leave it. */
export const JURISDICTIONS = ["eu", "fedramp", "fedramp-high"] as const;
export type Jurisdiction = (typeof JURISDICTIONS)[number];
/** Durable Object location hints: where a new object is created, best effort. */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/** ReductStore's levels, most verbose first. */
export const LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = "INFO";

/** The variables we read; everything is optional text in the Worker env. */
export type RsEnv = Partial<
  Record<
    | "RS_API_TOKEN"
    | "RS_INIT_API_TOKEN"
    | "RS_DISABLE_AUTH"
    | "RS_INSTANCE_NAME"
    | "RS_INSTANCE_ROLE"
    | "RS_API_BASE_PATH"
    | "RS_CORS_ALLOW_ORIGIN"
    | "RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE"
    | "RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS"
    | "RS_DEFAULTS_BUCKET_QUOTA_TYPE"
    | "RS_DEFAULTS_BUCKET_QUOTA_SIZE"
    | "RS_MAX_RECORD_SIZE"
    | "RS_IO_BATCH_MAX_RECORDS"
    | "RS_IO_BATCH_MAX_SIZE"
    | "RS_IO_BATCH_MAX_METADATA_SIZE"
    | "RS_LOG_LEVEL"
    | "RS_IO_OPERATION_TIMEOUT"
    | "RS_SYSTEM_EVENTS_ENABLED"
    | "RS_SYSTEM_EVENTS_QUOTA_SIZE"
    | "RS_SYSTEM_EVENTS_FLUSH_INTERVAL"
    | "RS_SYSTEM_EVENTS_USAGE_INTERVAL"
    | "RS_DO_JURISDICTION"
    | "RS_DO_LOCATION_HINT"
    | "RS_REPLICATION_LOG_SIZE",
    string | undefined
  >
>;

export const DEFAULT_MAX_BLOCK_BYTES = 64_000_000;
export const DEFAULT_MAX_BLOCK_RECORDS = 1024;
/** Cloudflare accepts request bodies up to 100 MB on the Free and Pro plans. */
export const DEFAULT_MAX_RECORD_BYTES = 100 * 1024 * 1024;
export const DEFAULT_INSTANCE_NAME = "reduct-edge";
export const DEFAULT_BATCH_MAX_RECORDS = 85;
/** ReductStore's RS_REPLICATION_LOG_SIZE default. */
export const DEFAULT_REPLICATION_LOG_SIZE = 1_000_000;
export const DEFAULT_BATCH_MAX_BYTES = 8_000_000;
/**
 * Record metadata of a batch travels in response headers. The reference allows 512 KB; behind
 * Cloudflare's edge we keep it far smaller and let clients fetch more batches instead.
 */
export const DEFAULT_BATCH_MAX_METADATA_BYTES = 16_000;
/** As in ReductStore: a body that sends nothing for 30 s is refused. */
export const DEFAULT_IO_OPERATION_TIMEOUT_SECONDS = 30;

/** As in ReductStore: system events on, `$system` FIFO-limited to 10 GB. */
export const DEFAULT_SYSTEM_EVENTS_QUOTA_BYTES = 10_000_000_000;
/** Aggregated audit calls are flushed to `$system` at most this often per isolate. */
export const DEFAULT_SYSTEM_EVENTS_FLUSH_INTERVAL_SECONDS = 60;
/** As in ReductStore: one usage window (traffic summed, then written to `$system`) per minute. */
export const DEFAULT_SYSTEM_EVENTS_USAGE_INTERVAL_SECONDS = 60;

export class ConfigError extends Error {
  override name = "ConfigError";
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** Parses `1024`, `64MB`, `1 GiB` into bytes (ReductStore accepts sizes with units in env vars). */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unitName = (match[2] ?? "").toUpperCase();
  const unit = Object.hasOwn(SIZE_UNITS, unitName) ? SIZE_UNITS[unitName] : undefined;
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const byteSize = z.string().transform((text, ctx) => {
  const bytes = parseByteSize(text);
  if (bytes === undefined) {
    ctx.addIssue({ code: "custom", message: `expected a size in bytes like 1024 or 64MB, got '${text}'` });
    return z.NEVER;
  }
  return bytes;
});

const positiveInt = z
  .string()
  .regex(/^\s*\d+\s*$/, "expected a whole number")
  .transform(Number)
  .pipe(z.number().int().positive().max(Number.MAX_SAFE_INTEGER));

const bool = z
  .string()
  .transform((text) => text.trim().toLowerCase())
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no", "on", "off", ""]))
  .transform((text) => ["true", "1", "yes", "on"].includes(text));

/** `WARNING` is accepted too: ReductStore's documentation spells the level that way. */
const logLevel = z
  .string()
  .transform((text) => text.trim().toUpperCase())
  .transform((text) => (text === "WARNING" ? "WARN" : text))
  .pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(", ")}` }));

const rsEnvSchema = z.object({
  RS_API_TOKEN: z.string().optional(),
  RS_INIT_API_TOKEN: z.string().optional(),
  RS_DISABLE_AUTH: bool.optional(),
  RS_INSTANCE_NAME: z.string().min(1).max(256).optional(),
  RS_INSTANCE_ROLE: z
    .string()
    .transform((text) => text.trim().toUpperCase())
    .pipe(z.literal("STANDALONE", { error: "only STANDALONE is supported" }))
    .optional(),
  RS_API_BASE_PATH: z
    .string()
    .regex(/^[A-Za-z0-9_\-/.]*$/, "expected a URL path")
    // A `.` or `..` segment is resolved away by every client and proxy: nothing would be reachable.
    .refine(
      (path) =>
        !normaliseBasePath(path)
          .split("/")
          .some((segment) => segment === "." || segment === ".."),
      "expected a URL path without '.' or '..' segments",
    )
    .optional(),
  RS_CORS_ALLOW_ORIGIN: z.string().optional(),
  RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE: byteSize.pipe(z.number().positive()).optional(),
  RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: positiveInt.optional(),
  RS_DEFAULTS_BUCKET_QUOTA_TYPE: z
    .string()
    .transform((text) => text.trim().toUpperCase())
    .pipe(z.enum(["NONE", "FIFO", "HARD"]))
    .optional(),
  RS_DEFAULTS_BUCKET_QUOTA_SIZE: byteSize.optional(),
  RS_MAX_RECORD_SIZE: byteSize.pipe(z.number().positive()).optional(),
  RS_IO_BATCH_MAX_RECORDS: positiveInt.optional(),
  RS_IO_BATCH_MAX_SIZE: byteSize.pipe(z.number().positive()).optional(),
  RS_IO_BATCH_MAX_METADATA_SIZE: byteSize.pipe(z.number().positive().max(64_000)).optional(),
  RS_LOG_LEVEL: logLevel.optional(),
  RS_IO_OPERATION_TIMEOUT: positiveInt.pipe(z.number().max(3600)).optional(),
  RS_SYSTEM_EVENTS_ENABLED: bool.optional(),
  RS_SYSTEM_EVENTS_QUOTA_SIZE: byteSize.pipe(z.number().positive()).optional(),
  RS_SYSTEM_EVENTS_FLUSH_INTERVAL: positiveInt.pipe(z.number().max(3600)).optional(),
  RS_SYSTEM_EVENTS_USAGE_INTERVAL: positiveInt.pipe(z.number().max(3600)).optional(),
  RS_DO_JURISDICTION: z
    .string()
    .transform((text) => text.trim().toLowerCase())
    .pipe(z.enum(JURISDICTIONS, { error: `expected one of ${JURISDICTIONS.join(", ")}` }))
    .optional(),
  RS_DO_LOCATION_HINT: z
    .string()
    .transform((text) => text.trim().toLowerCase())
    .pipe(z.enum(LOCATION_HINTS, { error: `expected one of ${LOCATION_HINTS.join(", ")}` }))
    .optional(),
  RS_REPLICATION_LOG_SIZE: positiveInt.optional(),
});

/** Every RS_* variable the Worker reads. */
export const WORKER_VARIABLES: readonly string[] = Object.keys(rsEnvSchema.shape);

export function normaliseBasePath(path: string | undefined): string {
  const trimmed = (path ?? "").trim().replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "/" : `/${trimmed}/`;
}

/**
 * The base path alone, so that a bad value of another variable does not move the API away from
 * where clients look for it. An invalid RS_API_BASE_PATH yields `/`: the API (and the error naming
 * the variable) then stays reachable at /api/v1.
 */
export function basePathFromEnv(env: RsEnv): string {
  const value = env.RS_API_BASE_PATH;
  if (typeof value !== "string" || value === "") return "/";
  const parsed = rsEnvSchema.shape.RS_API_BASE_PATH.safeParse(value);
  return parsed.success ? normaliseBasePath(parsed.data) : "/";
}

/**
 * The log level alone, so that requests are still logged when another variable is invalid (they
 * then answer 500, which is logged at ERROR). An invalid RS_LOG_LEVEL yields the default.
 */
export function logLevelFromEnv(env: RsEnv): LogLevel {
  const value = env.RS_LOG_LEVEL;
  if (typeof value !== "string" || value === "") return DEFAULT_LOG_LEVEL;
  // Asked once per request: parse each value once.
  if (lastLogLevel?.value !== value) {
    const parsed = logLevel.safeParse(value);
    lastLogLevel = { value, level: parsed.success ? parsed.data : DEFAULT_LOG_LEVEL };
  }
  return lastLogLevel.level;
}
let lastLogLevel: { value: string; level: LogLevel } | undefined;

/** Reads and validates the RS_* variables. Throws `ConfigError` naming the first bad variable. */
export function parseConfig(env: RsEnv): Config {
  // Empty strings mean "not set" (wrangler passes unset shell variables through as "").
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key.startsWith("RS_") && typeof value === "string" && value !== ""),
  );
  const parsed = rsEnvSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "RS_*");
    throw new ConfigError(`Invalid value of ${variable}: ${issue?.message ?? "invalid"}`);
  }
  const vars = parsed.data;
  // Both set: RS_API_TOKEN wins, the init token is the provisioned one.
  const auth: AuthMode = vars.RS_API_TOKEN
    ? { kind: "token", initToken: vars.RS_API_TOKEN, initTokenProvisioned: true }
    : vars.RS_INIT_API_TOKEN
      ? { kind: "token", initToken: vars.RS_INIT_API_TOKEN, initTokenProvisioned: false }
      : vars.RS_DISABLE_AUTH
        ? { kind: "disabled" }
        : { kind: "unconfigured" };

  return {
    auth,
    instanceName: vars.RS_INSTANCE_NAME ?? DEFAULT_INSTANCE_NAME,
    instanceRole: "STANDALONE",
    basePath: normaliseBasePath(vars.RS_API_BASE_PATH),
    corsAllowOrigins: (vars.RS_CORS_ALLOW_ORIGIN ?? "")
      .split(",")
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ""),
    bucketDefaults: {
      max_block_size: vars.RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE ?? DEFAULT_MAX_BLOCK_BYTES,
      max_block_records: vars.RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS ?? DEFAULT_MAX_BLOCK_RECORDS,
      quota_type: vars.RS_DEFAULTS_BUCKET_QUOTA_TYPE ?? "NONE",
      quota_size: vars.RS_DEFAULTS_BUCKET_QUOTA_SIZE ?? 0,
    },
    maxRecordBytes: vars.RS_MAX_RECORD_SIZE ?? DEFAULT_MAX_RECORD_BYTES,
    batch: {
      maxRecords: vars.RS_IO_BATCH_MAX_RECORDS ?? DEFAULT_BATCH_MAX_RECORDS,
      maxBytes: vars.RS_IO_BATCH_MAX_SIZE ?? DEFAULT_BATCH_MAX_BYTES,
      maxMetadataBytes: vars.RS_IO_BATCH_MAX_METADATA_SIZE ?? DEFAULT_BATCH_MAX_METADATA_BYTES,
    },
    logLevel: vars.RS_LOG_LEVEL ?? DEFAULT_LOG_LEVEL,
    ioTimeoutMs: (vars.RS_IO_OPERATION_TIMEOUT ?? DEFAULT_IO_OPERATION_TIMEOUT_SECONDS) * 1000,
    systemEvents: {
      enabled: vars.RS_SYSTEM_EVENTS_ENABLED ?? true,
      quotaBytes: vars.RS_SYSTEM_EVENTS_QUOTA_SIZE ?? DEFAULT_SYSTEM_EVENTS_QUOTA_BYTES,
      flushIntervalMs: (vars.RS_SYSTEM_EVENTS_FLUSH_INTERVAL ?? DEFAULT_SYSTEM_EVENTS_FLUSH_INTERVAL_SECONDS) * 1000,
      usageIntervalMs: (vars.RS_SYSTEM_EVENTS_USAGE_INTERVAL ?? DEFAULT_SYSTEM_EVENTS_USAGE_INTERVAL_SECONDS) * 1000,
    },
    placement: {
      ...(vars.RS_DO_JURISDICTION ? { jurisdiction: vars.RS_DO_JURISDICTION } : {}),
      ...(vars.RS_DO_LOCATION_HINT ? { locationHint: vars.RS_DO_LOCATION_HINT } : {}),
    },
    replicationLogSize: vars.RS_REPLICATION_LOG_SIZE ?? DEFAULT_REPLICATION_LOG_SIZE,
  };
}

const configCache = new WeakMap<object, Config | ConfigError>();
/** The last parse, by the RS_* values it came from: workerd may hand each request a new env object. */
let lastParse: { key: string; result: Config | ConfigError } | undefined;

/** The RS_* variables of `env` as one string, the cache key of their parse. */
function rsKey(env: RsEnv): string {
  let key = "";
  for (const name of Object.keys(env)) {
    if (!name.startsWith("RS_")) continue;
    const value = env[name as keyof RsEnv];
    key += `${name}\u0000${typeof value === "string" ? value : typeof value}\u0000`;
  }
  return key;
}

/**
 * Parses once per set of RS_* values. Cached per env object and, since the env object may be new
 * for every request (measured: a zod parse per request cost /alive ~15 % of its rate), by value.
 */
export function configFromEnv(env: RsEnv): Config {
  let cached = configCache.get(env);
  if (!cached) {
    const key = rsKey(env);
    if (lastParse?.key !== key) {
      let result: Config | ConfigError;
      try {
        result = parseConfig(env);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        result = error;
      }
      lastParse = { key, result };
    }
    cached = lastParse.result;
    configCache.set(env, cached);
  }
  if (cached instanceof ConfigError) throw cached;
  return cached;
}
