/**
 * The replication sender's wire: what goes to the target (destination entry, `x-reduct-time-*`
 * values as ReductStore's sender writes them) and how the target's answers read (per-record errors,
 * whole-request failures, which refusals are for good).
 */
import type { ReplicationCompression } from "../../model/replications";
import type { LogRow } from "../tables/replication-log";

export type OutboundFetch = (request: Request) => Promise<Response>;

/** 4xx answers that can heal: a token fixed, a bucket created again, a target less busy. */
const HEALING = [401, 403, 404, 408, 425, 429];

/**
 * A whole request the target refuses with one of these keeps being refused: a retry cannot help
 * (the batch itself is wrong for it), while 401/403 (token), 404 (bucket gone), 408, 425 and 429
 * can heal. Such a batch is retried REFUSALS_BEFORE_DROP (replication-send.ts) times in a row (about two minutes of
 * attempts, in case the target was briefly misconfigured), then dropped and counted as errored,
 * as ReductStore's sender drops it, so one bad batch never stops the replication for good.
 */
export function refusedForGood(status: number): boolean {
  return status >= 400 && status < 500 && !HEALING.includes(status);
}

/**
 * A per-record error that can heal as a whole-request one can (5xx, 401/403, 408, 425, 429): the
 * attempt fails and the record is sent again, never dropped as errored (ReductStore drops it). A
 * per-record 404 is read apart: a missing bucket for a write, a missing record for a label update.
 */
export function recordMayHeal(status: number): boolean {
  return status >= 500 || (status !== 404 && HEALING.includes(status));
}

export interface ErrorCount {
  status: string;
  count: number;
  message: string;
}

/** The target answered for every row sent (some may have failed on their own). */
export interface Acked {
  acked: true;
  ok: number;
  errors: ErrorCount[];
  /** Label updates of records the target does not have: they are written instead. */
  notFound?: LogRow[];
}

/** The request failed as a whole: nothing is deleted. */
export interface Failed {
  acked: false;
  status: number;
  message: string;
  /** Whether the target answered at all (false: network error, timeout, 502/503/504). */
  reached: boolean;
  /**
   * The target answered for the records themselves (a per-record error that can heal, or a 409
   * it cannot back with the record): only their entry is held back, the others keep going.
   */
  entryOnly?: boolean;
}

export type Outcome = Acked | Failed;

export interface Target {
  base: string;
  bucket: string;
  headers: Record<string, string>;
  /** The coding of write bodies: the settings' when the target reads it, else none. */
  compression: ReplicationCompression;
  /** Content bytes of one write request (the first record goes whatever its size). */
  maxBytes: number;
}

/** ReductStore's destination entry: the prefix without surrounding slashes, then the entry. */
export function destinationEntry(prefix: string, entry: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? entry : `${trimmed}/${entry.replace(/^\/+/, "")}`;
}

/** One `x-reduct-time-<ts>` value as ReductStore's sender writes it: sorted labels, quoted when they hold a comma. */
export function timeHeader(size: number | null, contentType: string, labels: Record<string, string>): string {
  const values = size === null ? ["0", ""] : [String(size), contentType];
  const pairs = Object.entries(labels).map(([name, value]) => (value.includes(",") ? `${name}="${value}"` : `${name}=${value}`));
  if (pairs.length > 0) values.push(pairs.sort().join(","));
  return values.join(",");
}

export function recordErrors(response: Response): Map<number, { status: number; message: string }> {
  const errors = new Map<number, { status: number; message: string }>();
  for (const [name, value] of response.headers) {
    if (!name.startsWith("x-reduct-error-")) continue;
    const ts = Number(name.slice("x-reduct-error-".length));
    const comma = value.indexOf(",");
    const status = Number(comma < 0 ? value : value.slice(0, comma));
    errors.set(ts, { status: Number.isFinite(status) ? status : -1, message: comma < 0 ? "" : value.slice(comma + 1) });
  }
  return errors;
}

export function failure(response: Response): Failed {
  return {
    acked: false,
    status: response.status,
    message: response.headers.get("x-reduct-error") ?? `HTTP ${response.status}`,
    reached: ![502, 503, 504].includes(response.status),
  };
}

export const unreachable = (error: unknown): Failed => ({
  acked: false,
  status: 0,
  message: error instanceof Error ? error.message : String(error),
  reached: false,
});
