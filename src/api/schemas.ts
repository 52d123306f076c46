/**
 * zod schemas of the wire JSON (snake_case, as the spec) and of names. Validation failures become
 * our error type with the spec's status and message via `parseOr422`, never zod's own output.
 */
import { z } from "zod";
import { unprocessable } from "../errors";

/** Largest integer we accept where the wire says u64: JSON numbers are exact up to 2^53 − 1. */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

export const u64 = z.number().int().min(0).max(MAX_SAFE_U64);

export const quotaType = z.enum(["NONE", "FIFO", "HARD"]);

/** Bucket settings in a request: every field optional and nullable; unknown keys ignored. */
export const bucketSettingsPatch = z.object({
  max_block_size: u64.nullish(),
  max_block_records: u64.nullish(),
  quota_type: quotaType.nullish(),
  quota_size: u64.nullish(),
});

export type BucketSettingsPatch = z.infer<typeof bucketSettingsPatch>;

export const renameBody = z.object({ new_name: z.string() });

/** Describes the first zod issue the way serde would, for `Invalid JSON: …` messages. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid value";
  const path = issue.path.join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** Parses with zod; failures are 422 with `prefix` (default `Invalid JSON: `) and a short reason. */
export function parseOr422<T extends z.ZodType>(schema: T, value: unknown, prefix = "Invalid JSON: "): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw unprocessable(`${prefix}${describeIssue(parsed.error)}`);
  return parsed.data;
}

export const BUCKET_NAME_PATTERN = /^[A-Za-z0-9_-]+$/;
/** ReductStore has no limit; ours keeps names usable as object names and in headers. */
export const MAX_NAME_LENGTH = 256;

/** Validates a bucket name for create/rename (the "digests" typo is the reference's). */
export function assertBucketName(name: string): void {
  if (!BUCKET_NAME_PATTERN.test(name)) {
    throw unprocessable("Bucket or entry name can contain only letters, digests and [-,_] symbols");
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw unprocessable(`Bucket name must be at most ${MAX_NAME_LENGTH} characters`);
  }
}
