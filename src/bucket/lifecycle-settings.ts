/**
 * Lifecycle policy settings: the request JSON, its defaults and its checks, as ReductStore 1.21
 * validates them. Pure, so the API and provisioning share exactly one set of rules.
 */
import { z } from "zod";
import { unprocessable } from "../errors";
import { parseCondition } from "./query-batch";

export const lifecycleMode = z.enum(["enabled", "disabled", "dry_run"]);
export type LifecycleMode = z.infer<typeof lifecycleMode>;

const settingsBody = z.object({
  type: z.enum(["delete", "compress"]),
  bucket: z.string(),
  entries: z.array(z.string()).default([]),
  older_than: z.string(),
  interval: z.string().default("3600s"),
  processing_interval: z.string().nullish(),
  when: z.unknown().optional(),
  mode: lifecycleMode.default("enabled"),
});

export interface LifecycleSettings {
  type: "delete" | "compress";
  bucket: string;
  entries: string[];
  older_than: string;
  interval: string;
  processing_interval: string;
  when?: unknown;
  mode: LifecycleMode;
}

const MICROS: Record<string, number> = {
  us: 1,
  ms: 1_000,
  s: 1_000_000,
  m: 60_000_000,
  h: 3_600_000_000,
  d: 86_400_000_000,
  w: 604_800_000_000,
};
const MIN_OLDER_THAN_US = MICROS.h as number;
const MIN_INTERVAL_US = 10 * (MICROS.m as number);

/** `"30d"`, `"3600s"`, `"1h30m"`: whole numbers with units us, ms, s, m, h, d, w. */
export function parseDurationMicros(text: string): number | string {
  const trimmed = text.trim();
  if (trimmed === "") return "empty duration";
  const part = /(\d+)\s*(us|ms|s|m|h|d|w)/y;
  let total = 0;
  let at = 0;
  while (at < trimmed.length) {
    part.lastIndex = at;
    const match = part.exec(trimmed);
    if (!match) return `invalid duration '${trimmed.slice(at)}'`;
    total += Number(match[1]) * (MICROS[match[2] as string] as number);
    at = part.lastIndex;
    while (trimmed[at] === " ") at++;
  }
  if (!Number.isSafeInteger(total)) return "duration is too long";
  return total;
}

/** Micro-second values of a validated policy, what the bucket's object runs by. */
export interface LifecycleTimes {
  olderThanUs: number;
  intervalUs: number;
  processingIntervalUs: number;
}

export function lifecycleTimes(settings: LifecycleSettings): LifecycleTimes {
  return {
    olderThanUs: parseDurationMicros(settings.older_than) as number,
    intervalUs: parseDurationMicros(settings.interval) as number,
    processingIntervalUs: parseDurationMicros(settings.processing_interval) as number,
  };
}

/** Parses and checks a create/update body; failures are 422 with ReductStore's wording. */
export function parseLifecycleSettings(value: unknown): LifecycleSettings {
  const parsed = settingsBody.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw unprocessable(`Invalid JSON: ${path ? `${path}: ` : ""}${issue?.message ?? "invalid value"}`);
  }
  const body = parsed.data;

  const olderThan = parseDurationMicros(body.older_than);
  if (typeof olderThan === "string") {
    throw unprocessable(`Invalid lifecycle older than '${body.older_than}': ${olderThan}`);
  }
  if (olderThan < MIN_OLDER_THAN_US) {
    throw unprocessable(`Lifecycle older than '${body.older_than}' is shorter than minimum allowed value of 1h`);
  }
  const interval = parseDurationMicros(body.interval);
  if (typeof interval === "string") {
    throw unprocessable(`Invalid lifecycle interval '${body.interval}': ${interval}`);
  }
  if (interval < MIN_INTERVAL_US) {
    throw unprocessable(`Lifecycle interval '${body.interval}' is shorter than minimum allowed value of 10m`);
  }
  let processingInterval = body.processing_interval ?? null;
  if (processingInterval === null) {
    processingInterval = `${(interval * 24) / 1_000_000}s`;
  } else {
    const micros = parseDurationMicros(processingInterval);
    if (typeof micros === "string") {
      throw unprocessable(`Invalid lifecycle processing interval '${processingInterval}': ${micros}`);
    }
    if (micros <= 0) throw unprocessable(`Lifecycle processing interval '${processingInterval}' must be positive`);
  }
  if (body.when !== undefined && body.when !== null) {
    const condition = parseCondition(body.when);
    if (condition !== null && "ok" in condition && !condition.ok) {
      throw unprocessable(`Invalid lifecycle condition: ${condition.error.message}`);
    }
    if (typeof body.when === "object" && body.when !== null && "#ext" in body.when) {
      throw unprocessable("Lifecycle condition cannot use '#ext' directive");
    }
  }
  if (body.type === "compress") {
    throw unprocessable(
      "Lifecycle type 'compress' is not supported by this server: blocks are read per record by ranged requests",
    );
  }
  const settings: LifecycleSettings = {
    type: body.type,
    bucket: body.bucket,
    entries: body.entries,
    older_than: body.older_than,
    interval: body.interval,
    processing_interval: processingInterval,
    mode: body.mode,
  };
  if (body.when !== undefined && body.when !== null) settings.when = body.when;
  return settings;
}
