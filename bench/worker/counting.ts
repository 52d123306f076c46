/**
 * Bench-only instrumentation, bundled into the Workers under test (never into the product build).
 * Wraps the bindings a Worker sees so the benchmark can count billable operations: Worker
 * requests, Durable Object requests (RPC calls, alarms), SQLite rows read/written inside Durable
 * Objects (from the cursors' own counters, per statement), setAlarm calls, R2 operations by
 * pricing class, and D1 queries with the rows D1 reports in its result meta.
 *
 * Attribution: in workerd a Worker and its Durable Objects share one isolate, so counters live in
 * module scope. Work done inside a Durable Object (its methods, alarms, and anything they start)
 * is counted under that object's id via AsyncLocalStorage; everything else under "edge". The
 * benchmark asks for edge + the objects of the workload it measures, so deferred work of an
 * earlier workload's object (a late seal, garbage deletion) never lands in another's numbers.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** Per SQL statement: how often it ran and the rows it touched. */
interface StatementStats {
  execs: number;
  rowsRead: number;
  rowsWritten: number;
}

/** Workers binding method → R2 pricing class (developers.cloudflare.com/r2/pricing). */
const R2_CLASS = {
  put: "A",
  list: "A",
  createMultipartUpload: "A",
  uploadPart: "A",
  complete: "A",
  get: "B",
  head: "B",
  delete: "free",
  abort: "free",
};

function emptyCounters() {
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
    /** D1 queries whose API gives no row counts (first/raw): counted as queries only. */
    d1QueriesWithoutMeta: 0,
    /** Per SQL statement text (whitespace collapsed): executions and rows read/written. */
    sqlByStatement: {},
  };
}

const scope = new AsyncLocalStorage();
let edge = emptyCounters();
/** Durable Object id (hex) → its counters. */
let objects = new Map();

/** The counters of the code running now: its Durable Object's, or the edge's. */
function current() {
  const id = scope.getStore();
  if (id === undefined) return edge;
  let counters = objects.get(id);
  if (!counters) {
    counters = emptyCounters();
    objects.set(id, counters);
  }
  return counters;
}

export function count(key, n = 1) {
  current()[key] += n;
}

export function resetCounters() {
  edge = emptyCounters();
  objects = new Map();
}

function addInto(total, part: { r2Ops: Record<string, number>; sqlByStatement: Record<string, StatementStats> }) {
  for (const [key, value] of Object.entries(part)) {
    if (typeof value === "number") total[key] += value;
  }
  for (const [op, n] of Object.entries(part.r2Ops)) total.r2Ops[op] = (total.r2Ops[op] ?? 0) + n;
  for (const [statement, stats] of Object.entries(part.sqlByStatement)) {
    total.sqlByStatement[statement] ??= { execs: 0, rowsRead: 0, rowsWritten: 0 };
    const into = total.sqlByStatement[statement];
    into.execs += stats.execs;
    into.rowsRead += stats.rowsRead;
    into.rowsWritten += stats.rowsWritten;
  }
}

/** The edge's counters and the sum of the given objects' (all objects when `ids` is undefined). */
export function snapshotCounters(ids) {
  const edgeCopy = emptyCounters();
  addInto(edgeCopy, edge);
  const objectSum = emptyCounters();
  for (const [id, counters] of objects) if (!ids || ids.has(id)) addInto(objectSum, counters);
  return { edge: edgeCopy, objects: objectSum };
}

function countR2(op) {
  const counters = current();
  counters.r2Ops[op] = (counters.r2Ops[op] ?? 0) + 1;
  const cls = R2_CLASS[op];
  if (cls === "A") counters.r2ClassA++;
  else if (cls === "B") counters.r2ClassB++;
  else if (cls === "free") counters.r2Free++;
}

function wrapMultipart(upload) {
  return {
    get key() {
      return upload.key;
    },
    get uploadId() {
      return upload.uploadId;
    },
    uploadPart(partNumber, value, options) {
      countR2("uploadPart");
      return upload.uploadPart(partNumber, value, options);
    },
    complete(parts) {
      countR2("complete");
      return upload.complete(parts);
    },
    abort() {
      countR2("abort");
      return upload.abort();
    },
  };
}

const r2Cache = new WeakMap();

/** An R2Bucket that counts every operation by pricing class. */
export function countingR2(bucket) {
  if (!bucket) return bucket;
  let wrapped = r2Cache.get(bucket);
  if (wrapped) return wrapped;
  wrapped = {
    head: (key) => {
      countR2("head");
      return bucket.head(key);
    },
    get: (key, options) => {
      countR2("get");
      return bucket.get(key, options);
    },
    put: (key, value, options) => {
      countR2("put");
      return bucket.put(key, value, options);
    },
    delete: (keys) => {
      countR2("delete");
      return bucket.delete(keys);
    },
    list: (options) => {
      countR2("list");
      return bucket.list(options);
    },
    createMultipartUpload: async (key, options) => {
      countR2("createMultipartUpload");
      return wrapMultipart(await bucket.createMultipartUpload(key, options));
    },
    resumeMultipartUpload: (key, uploadId) => wrapMultipart(bucket.resumeMultipartUpload(key, uploadId)),
  };
  r2Cache.set(bucket, wrapped);
  return wrapped;
}

function addD1Meta(counters, result) {
  const meta = result?.meta;
  if (meta) {
    counters.d1RowsRead += meta.rows_read ?? 0;
    counters.d1RowsWritten += meta.rows_written ?? 0;
  }
  return result;
}

const realStatement = new WeakMap();

function wrapStatement(statement) {
  const wrapped = {
    bind: (...values) => wrapStatement(statement.bind(...values)),
    run: async () => {
      const counters = current();
      counters.d1Queries++;
      return addD1Meta(counters, await statement.run());
    },
    all: async () => {
      const counters = current();
      counters.d1Queries++;
      return addD1Meta(counters, await statement.all());
    },
    first: (column) => {
      count("d1Queries");
      count("d1QueriesWithoutMeta");
      return column === undefined ? statement.first() : statement.first(column);
    },
    raw: (options) => {
      count("d1Queries");
      count("d1QueriesWithoutMeta");
      return statement.raw(options);
    },
  };
  realStatement.set(wrapped, statement);
  return wrapped;
}

const d1Cache = new WeakMap();

/** A D1Database that counts queries and the rows D1 reports having read and written. */
export function countingD1(db) {
  if (!db) return db;
  let wrapped = d1Cache.get(db);
  if (wrapped) return wrapped;
  wrapped = {
    prepare: (query) => wrapStatement(db.prepare(query)),
    batch: async (statements) => {
      const counters = current();
      counters.d1Queries += statements.length;
      const results = await db.batch(statements.map((s) => realStatement.get(s) ?? s));
      for (const result of results) addD1Meta(counters, result);
      return results;
    },
    exec: async (query) => {
      count("d1Queries");
      count("d1QueriesWithoutMeta");
      return db.exec(query);
    },
    withSession: (...args) => db.withSession(...args),
    dump: () => db.dump(),
  };
  d1Cache.set(db, wrapped);
  return wrapped;
}

/** Every call of a method on a stub is one billed Durable Object request (one RPC session). */
function countingStub(stub) {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function" || typeof prop === "symbol" || prop === "then") return value;
      return (...args) => {
        count("doRequests");
        return target[prop](...args);
      };
    },
  });
}

const nsCache = new WeakMap();

export function countingNamespace(namespace) {
  if (!namespace) return namespace;
  let wrapped = nsCache.get(namespace);
  if (wrapped) return wrapped;
  wrapped = new Proxy(namespace, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop === "get" || prop === "getByName") return (...args) => countingStub(value.apply(target, args));
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  nsCache.set(namespace, wrapped);
  return wrapped;
}

const envCache = new WeakMap();

/**
 * The env with counting bindings. `kinds` maps binding name → "r2" | "d1" | "do"; other
 * bindings pass through. Cached per env object so code that caches by env keeps working.
 */
export function countingEnv(env, kinds) {
  let wrapped = envCache.get(env);
  if (wrapped) return wrapped;
  wrapped = { ...env };
  for (const [name, kind] of Object.entries(kinds)) {
    if (kind === "r2") wrapped[name] = countingR2(env[name]);
    else if (kind === "d1") wrapped[name] = countingD1(env[name]);
    else if (kind === "do") wrapped[name] = countingNamespace(env[name]);
  }
  envCache.set(env, wrapped);
  return wrapped;
}

/** Statement text → its short key: normalising the text on every exec cost the measured code ~2 %. */
const statementKeys = new Map();

function statementStats(counters, query) {
  let key = statementKeys.get(query);
  if (key === undefined) {
    key = String(query).replace(/\s+/g, " ").trim().slice(0, 120);
    if (statementKeys.size < 10_000) statementKeys.set(query, key);
  }
  let stats = counters.sqlByStatement[key];
  if (!stats) {
    stats = { execs: 0, rowsRead: 0, rowsWritten: 0 };
    counters.sqlByStatement[key] = stats;
  }
  return stats;
}

function countCursor(cursor, query) {
  // Write statements without RETURNING run to completion on exec; reads add rows as consumed.
  const counters = current();
  const stats = statementStats(counters, query);
  counters.sqlExecs++;
  stats.execs++;
  let seenRead = 0;
  let seenWritten = 0;
  const settle = () => {
    const read = cursor.rowsRead - seenRead;
    const written = cursor.rowsWritten - seenWritten;
    counters.sqlRowsRead += read;
    counters.sqlRowsWritten += written;
    stats.rowsRead += read;
    stats.rowsWritten += written;
    seenRead = cursor.rowsRead;
    seenWritten = cursor.rowsWritten;
  };
  settle();
  for (const method of ["toArray", "one", "raw", "next"]) {
    const original = cursor[method];
    if (typeof original !== "function") continue;
    cursor[method] = (...args) => {
      try {
        return original.apply(cursor, args);
      } finally {
        settle();
      }
    };
  }
  return cursor;
}

const instrumented = new WeakSet();

/**
 * Instruments a Durable Object's storage in place (its `sql.exec` and `setAlarm`), before the
 * object's constructor captures `ctx.storage.sql`.
 */
export function instrumentStorage(storage) {
  if (instrumented.has(storage)) return;
  instrumented.add(storage);
  const sql = storage.sql;
  if (sql) {
    const exec = sql.exec;
    sql.exec = (...args) => countCursor(exec.apply(sql, args), args[0]);
  }
  const setAlarm = storage.setAlarm;
  storage.setAlarm = (...args) => {
    count("doSetAlarm");
    return setAlarm.apply(storage, args);
  };
}

/** Runs `fn` with the counters of the Durable Object `ctx` belongs to. */
export function inObjectScope(ctx, fn) {
  return scope.run(ctx.id.toString(), fn);
}

/**
 * Makes every method of a Durable Object class (its own and inherited ones, as RPC sees them)
 * run in its object's counting scope. Call once on the bench subclass.
 */
export function scopeMethods(cls, stopAt) {
  const seen = new Set(["constructor"]);
  for (
    let proto = cls.prototype;
    proto && proto !== stopAt?.prototype && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof descriptor?.value !== "function") continue;
      const original = descriptor.value;
      Object.defineProperty(cls.prototype, name, {
        configurable: true,
        writable: true,
        value: function scoped(...args) {
          return inObjectScope(this.ctx, () => original.apply(this, args));
        },
      });
    }
  }
}

/**
 * Handles the bench control routes; returns undefined for any other request.
 * `GET /__bench/counters[?objects=BINDING:name,…]` → `{ edge, objects }`: the edge's counters and
 * the sum of those objects' (all objects without the parameter, none with an empty one);
 * `GET /__bench/reset` zeroes everything.
 */
export function benchControl(request, env) {
  const url = new URL(request.url);
  if (!url.pathname.startsWith("/__bench/")) return undefined;
  if (url.pathname === "/__bench/counters") {
    const list = url.searchParams.get("objects");
    const ids =
      list === null
        ? undefined
        : new Set(
            list
              .split(",")
              .filter((item) => item !== "")
              .map((item) => {
                const [binding, name] = item.split(":");
                return env[binding].idFromName(name).toString();
              }),
          );
    return Response.json(snapshotCounters(ids));
  }
  if (url.pathname === "/__bench/reset") {
    resetCounters();
    return Response.json({ ok: true });
  }
  return new Response("unknown bench route", { status: 404 });
}
