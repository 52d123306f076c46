/** Operation counts per record → dollars per million records at the list prices of bench/prices.json. */
import fs from "node:fs";
import path from "node:path";
import { BENCH_DIR } from "./servers.ts";

export function loadPrices() {
  return JSON.parse(fs.readFileSync(path.join(BENCH_DIR, "prices.json"), "utf8"));
}

/** Billable quantities of one counters snapshot (see worker/counting.ts). */
export function billable(counters) {
  return {
    workers_requests: counters.workerRequests,
    do_requests: counters.doRequests,
    // Each setAlarm() is billed as one row written.
    do_sqlite_rows_written: counters.sqlRowsWritten + counters.doSetAlarm,
    do_sqlite_rows_read: counters.sqlRowsRead,
    r2_class_a: counters.r2ClassA,
    r2_class_b: counters.r2ClassB,
    // first()/raw() return no meta: counted as one row read each.
    d1_rows_read: counters.d1RowsRead + counters.d1QueriesWithoutMeta,
    d1_rows_written: counters.d1RowsWritten,
  };
}

/** Per 1,000 records: the raw counters that matter to a reader, rounded. */
export function perThousand(counters, records) {
  const scale = records > 0 ? 1000 / records : Number.NaN;
  const keys = [
    "workerRequests",
    "doRequests",
    "doAlarms",
    "doSetAlarm",
    "sqlExecs",
    "sqlRowsRead",
    "sqlRowsWritten",
    "r2ClassA",
    "r2ClassB",
    "r2Free",
    "d1Queries",
    "d1RowsRead",
    "d1RowsWritten",
  ];
  return Object.fromEntries(keys.map((key) => [key, counters[key] * scale]));
}

/** Dollars per million records, total and by item. */
export function costPerMillion(counters, records, prices) {
  const quantities = billable(counters);
  const breakdown = {};
  let total = 0;
  for (const [item, quantity] of Object.entries(quantities)) {
    const price = prices.per_million[item];
    const dollars = records > 0 ? (quantity / records) * price : Number.NaN;
    breakdown[item] = dollars;
    total += dollars;
  }
  return { total, breakdown };
}
