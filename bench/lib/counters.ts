/** Arithmetic on counter snapshots of bench/worker/counting.ts (Node side). */

/** Per SQL statement: how often it ran and the rows it touched. */
export interface StatementStats {
  execs: number;
  rowsRead: number;
  rowsWritten: number;
}

/** A counter snapshot: every field a number, but the R2 operations and the SQL statements, by name. */
export interface Counters {
  [field: string]: number | Record<string, number> | Record<string, StatementStats>;
  r2Ops: Record<string, number>;
  sqlByStatement: Record<string, StatementStats>;
}

export function emptyCounters(): Counters {
  return {
    workerRequests: 0,
    doRequests: 0,
    doAlarms: 0,
    doSetAlarm: 0,
    sqlExecs: 0,
    sqlRowsRead: 0,
    sqlRowsWritten: 0,
    r2ClassA: 0,
    r2ClassB: 0,
    r2Free: 0,
    r2Ops: {},
    d1Queries: 0,
    d1RowsRead: 0,
    d1RowsWritten: 0,
    d1QueriesWithoutMeta: 0,
    sqlByStatement: {},
  };
}

/** a + sign × b, field by field (maps included); returns a new object. */
function combine(a: Counters, b: Counters, sign: number): Counters {
  const out = emptyCounters();
  for (const key of Object.keys(out)) {
    const x = a[key];
    const y = b[key];
    if (typeof out[key] === "number") out[key] = (typeof x === "number" ? x : 0) + sign * (typeof y === "number" ? y : 0);
  }
  for (const source of [a, b]) {
    const factor = source === a ? 1 : sign;
    for (const [op, n] of Object.entries(source.r2Ops ?? {})) out.r2Ops[op] = (out.r2Ops[op] ?? 0) + factor * n;
    for (const [statement, stats] of Object.entries(source.sqlByStatement ?? {})) {
      out.sqlByStatement[statement] ??= { execs: 0, rowsRead: 0, rowsWritten: 0 };
      const into = out.sqlByStatement[statement];
      into.execs += factor * stats.execs;
      into.rowsRead += factor * stats.rowsRead;
      into.rowsWritten += factor * stats.rowsWritten;
    }
  }
  for (const [op, n] of Object.entries(out.r2Ops)) if (n === 0) delete out.r2Ops[op];
  for (const [statement, stats] of Object.entries(out.sqlByStatement)) {
    if (stats.execs === 0 && stats.rowsRead === 0 && stats.rowsWritten === 0) delete out.sqlByStatement[statement];
  }
  return out;
}

export const addCounters = (a: Counters, b: Counters): Counters => combine(a, b, 1);
export const subtractCounters = (a: Counters, b: Counters): Counters => combine(a, b, -1);
