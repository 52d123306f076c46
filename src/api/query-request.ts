/**
 * The query request (`QueryEntry`) and the legacy query-string form, validated at the edge
 * into the plain spec the bucket object executes. Also the query id and batch-limit plumbing the
 * v1 and v2 read endpoints share.
 */
import { z } from "zod";
import type { BatchLimits, QuerySpec } from "../bucket/query-engine";
import type { Config } from "../config";
import { unprocessable } from "../errors";
import { MAX_DEPTH } from "../query/condition/parser";
import { parseOr422, u64 } from "./schemas";

/** Query TTL when the request does not give one (seconds). */
export const DEFAULT_QUERY_TTL_S = 60;
/** Longest query TTL (seconds): an idle query's stored state is freed within a day. */
export const MAX_QUERY_TTL_S = 86_400;
/** Largest `when` (bytes of its JSON): it is stored with the query and parsed on every read. */
export const MAX_WHEN_BYTES = 64 * 1024;

export function checkedTtl(ttl: number | null | undefined): number {
  if (ttl === null || ttl === undefined) return DEFAULT_QUERY_TTL_S;
  if (ttl > MAX_QUERY_TTL_S) throw unprocessable(`Query TTL must be at most ${MAX_QUERY_TTL_S} seconds`);
  return ttl;
}

const queryEntry = z.object({
  query_type: z.enum(["QUERY", "REMOVE"], { error: "missing field `query_type` or unknown variant" }),
  entries: z.array(z.string()).nullish(),
  start: u64.nullish(),
  stop: u64.nullish(),
  ttl: u64.nullish(),
  only_metadata: z.boolean().nullish(),
  continuous: z.boolean().nullish(),
  when: z.unknown().optional(),
  strict: z.boolean().nullish(),
  ext: z.unknown().optional(),
});

export type QueryEntry = z.infer<typeof queryEntry>;

/**
 * JSON nesting of `when` the edge forwards to the bucket object. Its parser refuses anything deeper
 * than MAX_DEPTH levels with a 422, but a document thousands of levels deep would overflow the
 * stack of the RPC serialiser before reaching it (a 500). Twice the parser's limit never refuses
 * a condition the parser accepts.
 */
const MAX_FORWARDED_WHEN_DEPTH = 2 * MAX_DEPTH;

/** True when `value` nests objects/arrays deeper than `limit` levels (iterative: no recursion). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: Array<{ item: unknown; depth: number }> = [{ item: value, depth: 1 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { item, depth } = next;
    if (typeof item !== "object" || item === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push({ item: child, depth: depth + 1 });
  }
  return false;
}

export function parseQueryEntry(body: unknown): QueryEntry {
  if (body === undefined) throw unprocessable("Invalid JSON: EOF while parsing a value");
  const entry = parseOr422(queryEntry, body);
  if (nestedDeeperThan(entry.when, MAX_FORWARDED_WHEN_DEPTH)) {
    throw unprocessable(`Condition is nested too deeply (more than ${MAX_DEPTH} levels)`);
  }
  // After the depth check: serialising a document nested thousands deep would overflow the stack.
  const whenBytes = entry.when === undefined ? 0 : new TextEncoder().encode(JSON.stringify(entry.when)).byteLength;
  if (whenBytes > MAX_WHEN_BYTES) {
    throw unprocessable(`Query condition is too large: ${whenBytes} bytes of JSON, at most ${MAX_WHEN_BYTES}`);
  }
  if (entry.ext !== undefined && entry.ext !== null) {
    const name = typeof entry.ext === "object" ? Object.keys(entry.ext as object)[0] : undefined;
    throw unprocessable(
      name ? `Unknown extension '${name}': no extensions are installed` : "Extension name is not found in query",
    );
  }
  return entry;
}

/** A REMOVE body must narrow the removal somehow: `{"query_type":"REMOVE"}` alone is refused. */
export function assertRemoveHasParameters(entry: QueryEntry, entriesCount: boolean): void {
  const given =
    entry.start != null ||
    entry.stop != null ||
    (entry.when !== undefined && entry.when !== null) ||
    (entriesCount && entry.entries != null);
  if (!given) throw unprocessable("Define at least one query parameter to delete records");
}

export function toSpec(entry: QueryEntry, kind: QuerySpec["kind"], entries: string[]): QuerySpec {
  return {
    kind,
    entries,
    start: entry.start ?? null,
    stop: entry.stop ?? null,
    ttlSeconds: entry.query_type === "QUERY" ? checkedTtl(entry.ttl) : DEFAULT_QUERY_TTL_S,
    continuous: entry.continuous ?? false,
    onlyMetadata: entry.only_metadata ?? false,
    strict: entry.strict ?? false,
    when: entry.when ?? null,
  };
}

/** Parses a legacy `start`/`stop`/`ttl`/`continuous` query string (other parameters are ignored). */
export function legacySpec(query: Record<string, string>, entry: string): QuerySpec {
  const number = (name: "start" | "stop" | "ttl", message: string): number | null => {
    const text = query[name];
    if (text === undefined) return null;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw unprocessable(message);
    return Number(text);
  };
  const continuousText = query.continuous;
  if (continuousText !== undefined && continuousText !== "true" && continuousText !== "false") {
    throw unprocessable("'continue' must be a bool value");
  }
  return {
    kind: "entry",
    entries: [entry],
    start: number("start", "'start' must be an unix timestamp in microseconds"),
    stop: number("stop", "'stop' must be an unix timestamp in microseconds"),
    ttlSeconds: number("ttl", "'ttl' must be in seconds as an unsigned integer") ?? DEFAULT_QUERY_TTL_S,
    continuous: continuousText === "true",
    onlyMetadata: false,
    strict: false,
    when: null,
  };
}

/** A query id from `?q=` or `x-reduct-query-id`. */
export function parseQueryId(text: string, message: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw unprocessable(message);
  return Number(text);
}

export function batchLimits(config: Config, contiguousEntries: boolean): BatchLimits {
  return { ...config.batch, contiguousEntries };
}
