/** Operation counts per record → dollars per million records at the list prices of bench/prices.json. */
import fs from "node:fs";
import path from "node:path";
import type { Counters } from "./counters.ts";
import { BENCH_DIR } from "./servers.ts";

/** bench/prices.json: dollars per million of each billable item (and notes). */
export interface Prices {
  per_million: Record<string, number>;
}

/** A counter of a snapshot (NaN when missing, as arithmetic on a missing field gave). */
const count = (counters: Counters, key: string): number => {
  const value = counters[key];
  return typeof value === "number" ? value : Number.NaN;
};

export function loadPrices(): Prices {
  return JSON.parse(fs.readFileSync(path.join(BENCH_DIR, "prices.json"), "utf8")) as Prices;
}

/** Billable quantities of one counters snapshot (see worker/counting.ts). */
export function billable(counters: Counters): Record<string, number> {
  return {
    workers_requests: count(counters, "workerRequests"),
    do_requests: count(counters, "doRequests"),
    // Each setAlarm() is billed as one row written.
    do_sqlite_rows_written: count(counters, "sqlRowsWritten") + count(counters, "doSetAlarm"),
    do_sqlite_rows_read: count(counters, "sqlRowsRead"),
    r2_class_a: count(counters, "r2ClassA"),
    r2_class_b: count(counters, "r2ClassB"),
    // first()/raw() return no meta: counted as one row read each.
    d1_rows_read: count(counters, "d1RowsRead") + count(counters, "d1QueriesWithoutMeta"),
    d1_rows_written: count(counters, "d1RowsWritten"),
  };
}

/** Per 1,000 records: the raw counters that matter to a reader, rounded. */
export interface PerThousand {
  workerRequests: number;
  doRequests: number;
  doAlarms: number;
  doSetAlarm: number;
  sqlExecs: number;
  sqlRowsRead: number;
  sqlRowsWritten: number;
  r2ClassA: number;
  r2ClassB: number;
  r2Free: number;
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
}

export function perThousand(counters: Counters, records: number): PerThousand {
  const scale = records > 0 ? 1000 / records : Number.NaN;
  const per = (key: keyof PerThousand): number => count(counters, key) * scale;
  return {
    workerRequests: per("workerRequests"),
    doRequests: per("doRequests"),
    doAlarms: per("doAlarms"),
    doSetAlarm: per("doSetAlarm"),
    sqlExecs: per("sqlExecs"),
    sqlRowsRead: per("sqlRowsRead"),
    sqlRowsWritten: per("sqlRowsWritten"),
    r2ClassA: per("r2ClassA"),
    r2ClassB: per("r2ClassB"),
    r2Free: per("r2Free"),
    d1Queries: per("d1Queries"),
    d1RowsRead: per("d1RowsRead"),
    d1RowsWritten: per("d1RowsWritten"),
  };
}

/** Dollars per million records, total and by item. */
export function costPerMillion(
  counters: Counters,
  records: number,
  prices: Prices,
): { total: number; breakdown: Record<string, number> } {
  const quantities = billable(counters);
  const breakdown: Record<string, number> = {};
  let total = 0;
  for (const [item, quantity] of Object.entries(quantities)) {
    const price = prices.per_million[item] ?? Number.NaN;
    const dollars = records > 0 ? (quantity / records) * price : Number.NaN;
    breakdown[item] = dollars;
    total += dollars;
  }
  return { total, breakdown };
}
