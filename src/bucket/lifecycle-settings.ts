/**
 * Lifecycle policy settings: the request JSON, its defaults and its checks, as ReductStore 1.21
 * validates them. Pure, so the API and provisioning share exactly one set of rules.
 */
import { z } from "zod";
import { unprocessable } from "../errors";
import { formatDuration, parseDuration } from "./lifecycle-durations";
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

const MIN_OLDER_THAN_US = 3_600_000_000;
const MIN_INTERVAL_US = 600_000_000;
/**
 * The longest duration a policy takes (100 years): a timestamp of this century (µs since 1970) plus
 * or minus it stays below 2^53, so window bounds are exact doubles; a default processing_interval of
 * 24 intervals is capped here too.
 */
export const MAX_LIFECYCLE_DURATION_US = 36_500 * 86_400_000_000;
const MAX_LABEL = "36500d";

/**
 * A setting's duration in µs, within [min, MAX_LIFECYCLE_DURATION_US], or the 422 of ReductStore's
 * wording (its parse errors arrive formatted as its error type, hence the bracketed status).
 */
function durationSetting(label: string, text: string, min: { us: number; label: string } | "positive"): number {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw unprocessable(`Invalid lifecycle ${label} '${text}': [UnprocessableEntity] ${parsed.error}`);
  const capitalized = `Lifecycle ${label} '${text}'`;
  if (min === "positive") {
    if (parsed.us <= 0n) throw unprocessable(`${capitalized} must be positive`);
  } else if (parsed.us < BigInt(min.us)) {
    throw unprocessable(`${capitalized} is shorter than minimum allowed value of ${min.label}`);
  }
  if (parsed.us > BigInt(MAX_LIFECYCLE_DURATION_US)) {
    throw unprocessable(`${capitalized} is longer than maximum allowed value of ${MAX_LABEL}`);
  }
  return Number(parsed.us);
}

const olderThanUs = (text: string) => durationSetting("older than", text, { us: MIN_OLDER_THAN_US, label: "1h" });
const intervalUs = (text: string) => durationSetting("interval", text, { us: MIN_INTERVAL_US, label: "10m" });
const processingIntervalUs = (text: string) => durationSetting("processing interval", text, "positive");

/** Micro-second values of a validated policy, what the bucket's object runs by. */
export interface LifecycleTimes {
  olderThanUs: number;
  intervalUs: number;
  processingIntervalUs: number;
}

/** Throws for settings that fail today's checks (stored by an older version): the caller skips them. */
export function lifecycleTimes(settings: LifecycleSettings): LifecycleTimes {
  return {
    olderThanUs: olderThanUs(settings.older_than),
    intervalUs: intervalUs(settings.interval),
    processingIntervalUs: processingIntervalUs(settings.processing_interval),
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

  olderThanUs(body.older_than);
  const interval = intervalUs(body.interval);
  let processingInterval = body.processing_interval ?? null;
  if (processingInterval === null) {
    processingInterval = formatDuration(Math.min(interval * 24, MAX_LIFECYCLE_DURATION_US));
  } else {
    processingIntervalUs(processingInterval);
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
