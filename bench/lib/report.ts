/** Markdown tables of one run (printed, and pasted into bench/REFERENCE.md). */
import type { MeasuredResult, Result, Target } from "./types.ts";

const MIB = 2 ** 20;

type Cell = string | number;

function table(header: string[], rows: Cell[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells: Cell[]): string => `| ${cells.map((cell, i) => String(cell).padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–");
/** `n` with `digits` decimals; "–" when not a finite number (a cost item missing from the prices, too). */
const fixed = (n: number | undefined, digits: number): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : "–";
/** Rates: whole numbers when large, decimals when small (a 100 MiB upload is under 1 record/s). */
export const rate = (n: number): string =>
  !Number.isFinite(n) ? "–" : n >= 100 ? int(n) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
/** Per-1,000 counts: whole numbers when large, two decimals when small. */
const count = (n: number): string => (!Number.isFinite(n) ? "–" : n === 0 ? "0" : n >= 100 ? int(n) : n.toFixed(2));

const isMeasured = (result: Result): result is MeasuredResult => result.status === "measured";
/** Measured results with throughput (the start-time unit has none: it has its own table). */
const withRates = (results: Result[]): MeasuredResult[] => results.filter(isMeasured).filter((r) => !r.startup);

function ratios(result: MeasuredResult, byId: Map<string, Result>): string {
  return result.compareTo
    .map((id) => byId.get(id))
    .flatMap((base) => (base?.status === "measured" && base.recordsPerSec > 0 ? [base] : []))
    .map((base) => `${(result.recordsPerSec / base.recordsPerSec).toFixed(2)}× ${base.id}`)
    .join(", ");
}

export function throughputTable(results: Result[]): string {
  const byId = new Map(results.map((r) => [r.id, r]));
  const rows = withRates(results).map((r) => [
    r.id,
    r.title,
    r.connections,
    int(r.records),
    rate(r.recordsPerSec),
    r.mbPerSec >= 0.05 ? fixed(r.mbPerSec, 1) : "–",
    fixed(r.latencyMs.p50, 2),
    fixed(r.latencyMs.p99, 2),
    r.errors,
    ratios(r, byId) || "–",
    r.rss ? `${fixed(r.rss.growthBytes / MIB, 1)} MiB` : "–",
  ]);
  return table(
    [
      "id",
      "workload",
      "conns",
      "records",
      "rec/s",
      "MB/s",
      "p50 ms",
      "p99 ms",
      "errors",
      "vs baseline (rec/s)",
      "peak RSS growth",
    ],
    rows,
  );
}

export function operationsTable(results: Result[]): string {
  const rows = withRates(results).map((r) => {
    const k = r.perThousand;
    return [
      r.id,
      count(k.workerRequests),
      `${count(k.doRequests)}${k.doAlarms > 0 ? ` (${count(k.doAlarms)} alarms)` : ""}`,
      count(k.sqlRowsWritten + k.doSetAlarm),
      count(k.sqlRowsRead),
      count(k.r2ClassA),
      count(k.r2ClassB),
      count(k.d1Queries),
      count(k.d1RowsWritten),
      fixed(r.serverCpuMsPerRecord, 3),
      `$${fixed(r.costPerMillion.total, 2)}`,
    ];
  });
  return table(
    [
      "id",
      "Worker req",
      "DO req",
      "DO SQLite rows written (+setAlarm)",
      "DO SQLite rows read",
      "R2 class A",
      "R2 class B",
      "D1 queries",
      "D1 rows written",
      "workerd CPU ms/record",
      "$ per M records",
    ],
    rows,
  );
}

export function costBreakdownTable(results: Result[]): string {
  const measured = results.filter(isMeasured);
  const items = Object.keys(measured[0]?.costPerMillion.breakdown ?? {});
  const rows = measured.map((r) => [
    r.id,
    ...items.map((item) => fixed(r.costPerMillion.breakdown[item], 3)),
    fixed(r.costPerMillion.total, 3),
  ]);
  return table(["id", ...items.map((item) => `${item} $`), "total $/M"], rows);
}

/** Which Durable Object SQL statements touch the rows of the write workloads (per record). */
export function sqlStatementTables(results: Result[], ids = ["W1", "W2v1", "W2v2"]): string[] {
  const parts: string[] = [];
  for (const result of results.filter(isMeasured).filter((r) => ids.includes(r.id) && r.sqlTop.length > 0)) {
    const rows = result.sqlTop.map((w) => [
      `\`${w.statement.replace(/\|/g, "\\|")}\``,
      fixed(w.execsPerRecord, 3),
      fixed(w.rowsWrittenPerRecord, 3),
      fixed(w.rowsReadPerRecord, 3),
    ]);
    parts.push(
      `${result.id}:`,
      "",
      table(["statement (first 120 characters)", "execs/record", "rows written/record", "rows read/record"], rows),
      "",
    );
  }
  return parts;
}

export function unavailableLines(results: Result[]): string[] {
  return results
    .flatMap((r) => (r.status === "measured" ? [] : [r]))
    .map(
      (r) =>
        `- ${r.id} (${r.title}): ${r.status === "not implemented" ? "not implemented by the server yet" : r.status} — ${r.reason}`,
    );
}

export function targetsTable(targets: Target[]): string {
  const rows = targets.map((t) =>
    t.evaluable === true ? [t.target, t.value, t.met ? "met" : "MISSED"] : [t.target, `not evaluable yet: ${t.detail}`, "–"],
  );
  return table(["target (issue 6)", "measured", "status"], rows);
}

export function notesLines(results: Result[]): string[] {
  return results
    .filter(isMeasured)
    .filter((r) => r.notes.length > 0)
    .map((r) => `- ${r.id}: ${r.notes.join("; ")}`);
}

/** The start-time unit: medians per bundle and the product bundle's composition. */
export function startupLines(results: Result[]): string[] {
  const startup = results.filter(isMeasured).find((r) => r.startup)?.startup;
  if (!startup || startup.variants.length === 0) return [];
  const base = startup.variants[0];
  const kb = (n: number) => `${int(n / 1e3)} kB`;
  const signed = (n: number) => `${n >= 0 ? "+" : ""}${int(n)}`;
  const rows = startup.variants.map((v) => [
    v.name,
    `${kb(v.bytes)} (${kb(v.gzipBytes)})`,
    `${int(v.firstAnswerMs)} (${int(v.firstAnswerMinMs)}–${int(v.firstAnswerMaxMs)})`,
    base ? signed(v.firstAnswerMs - base.firstAnswerMs) : "–",
    int(v.workerdCpuMs),
    base ? signed(v.workerdCpuMs - base.workerdCpuMs) : "–",
    int(v.harnessCpuMs),
    fixed(v.warmRequestMs, 2),
  ]);
  const lines = [
    `Fresh workerd per sample, ${startup.rounds} rounds, medians:`,
    "",
    table(
      [
        "bundle",
        "size",
        "ms to first answer (min–max)",
        "vs no-op ms",
        "workerd CPU ms",
        "vs no-op CPU ms",
        "Miniflare (Node) CPU ms",
        "warm request ms",
      ],
      rows,
    ),
    "",
  ];
  const b = startup.bundle;
  if (b)
    lines.push(
      `Product bundle: ${kb(b.bytes)} (${kb(b.gzipBytes)} gzip); zod ${kb(b.zod)} (${int((100 * b.zod) / b.bytes)} %, of which non-English locales ${kb(b.zodLocales)}), hono ${kb(b.hono)}, src/ ${kb(b.src)}, other ${kb(b.other)}.`,
      "",
    );
  return lines;
}

/** W7buckets' fairness line. */
export function bucketsLines(results: Result[]): string[] {
  return results
    .filter(isMeasured)
    .flatMap((r) => (r.buckets ? [r] : []))
    .map(
      (r) =>
        `- ${r.id}: ${r.buckets?.buckets} buckets over ${r.buckets?.windowSeconds} s: per-bucket rec/s min ${int(r.buckets?.minRate ?? Number.NaN)}, median ${int(r.buckets?.medianRate ?? Number.NaN)}, max ${int(r.buckets?.maxRate ?? Number.NaN)}; Jain's index ${fixed(r.buckets?.jain, 3)}`,
    );
}

export function fullReport({ results, targets }: { results: Result[]; targets: Target[] }): string {
  const parts = [
    "### Throughput and latency",
    "",
    throughputTable(results),
    "",
    "### Operations per 1,000 records and list-price cost",
    "",
    operationsTable(results),
    "",
  ];
  const statements = sqlStatementTables(results);
  if (statements.length > 0) parts.push("### Where the Durable Object's SQLite rows go", "", ...statements);
  const startup = startupLines(results);
  if (startup.length > 0) parts.push("### Isolate start", "", ...startup);
  const buckets = bucketsLines(results);
  if (buckets.length > 0) parts.push("### Per-bucket fairness", "", ...buckets, "");
  const unavailable = unavailableLines(results);
  if (unavailable.length > 0) parts.push("### Not measured", "", ...unavailable, "");
  parts.push("### Targets", "", targetsTable(targets), "");
  const notes = notesLines(results);
  if (notes.length > 0) parts.push("### Notes", "", ...notes, "");
  return parts.join("\n");
}
