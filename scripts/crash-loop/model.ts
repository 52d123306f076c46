// The model of what the server must hold, rebuilt from the client journal alone: for every record
// written, whether it must exist (yes), must not (no) or may (maybe: no answer, a 503, a kill), and
// the label sets it may carry after label updates whose answers were lost.
import { FIFO_BUCKET } from "./settings.ts";

export type Labels = Record<string, string>;

/** A record the journal knows, and what the server may show of it. */
export interface ModelRecord {
  key: string;
  b: string;
  e: string;
  ts: number;
  size: number;
  ct: string;
  sha: string;
  fifo: boolean;
  exists: "yes" | "no" | "maybe";
  labelOptions: Labels[];
  writeOp: number;
  /** Journal ids of the operations on this record (for violation reports). */
  history: number[];
  cycle: number;
  intentAt: number;
  /** The last cycle that wrote, patched or deleted it. */
  touched: number;
  acked?: boolean;
  rejected?: string;
  indeterminate?: boolean;
  patched?: boolean;
  deleted?: boolean;
  deleteMaybe?: boolean;
  evicted?: boolean;
  resolved?: boolean;
}

/** A record as a write journaled it (a batch member leaves out what its batch names: b, e). */
export interface JournaledRecord {
  b: string;
  e: string;
  ts: number;
  size: number;
  ct?: string;
  labels?: Labels;
  sha: string;
  cycle?: number;
}

/** What every INTENT carries besides its operation's own fields. */
interface Stamp {
  cycle: number;
  at: number;
}

/** The JSON of an INTENT line, by operation (as scripts/crash-loop/workload.ts writes it). */
export type OpIntent =
  | { op: "write" | "dup"; data: JournaledRecord & Stamp }
  | { op: "batch1"; data: { b: string; e: string; records: (Omit<JournaledRecord, "b" | "e"> & { dup?: boolean })[] } & Stamp }
  | { op: "batch2"; data: { b: string; records: Omit<JournaledRecord, "b">[]; labelIndexes?: boolean } & Stamp }
  | { op: "patch"; data: { b: string; e: string; ts: number; set: Labels; remove: string[] } & Stamp }
  | { op: "delete"; data: { b: string; e: string; ts: number } & Stamp };

export type OpName = OpIntent["op"];

const OP_NAMES: readonly string[] = ["write", "dup", "batch1", "batch2", "patch", "delete"] satisfies OpName[];
const isOpName = (name: string): name is OpName => OP_NAMES.includes(name);

/** A write's record with the flag of a duplicate (a write the server must refuse). */
type WrittenRecord = JournaledRecord & { dup?: boolean };

/** The JSON of an ACK line. */
export interface AckExtra {
  body?: string;
  error?: string;
  /** Per-record errors of a batch: recordKey → "status,message". */
  errors?: Record<string, string>;
}

/** What the verifier observed of an indeterminate record (a RESOLVE line). */
export interface Resolution {
  key: string;
  exists: boolean;
  labels?: Labels;
  evicted?: boolean;
}

/** One journaled operation: a write (single, duplicate, v1 or v2 batch), a label update or a delete. */
export type ModelOp = OpIntent & {
  id: number;
  done: boolean;
  status?: number;
  failed?: boolean;
};

/** Something the model saw in an answer that is a violation by itself (a 5xx, a duplicate accepted). */
export interface RuntimeFinding {
  kind: "duplicate-accepted" | "unexpected-status" | "server-5xx";
  key: string;
  detail: string;
}

export const recordKey = (b: string, e: string, ts: number): string => `${b}\u0000${e}\u0000${ts}`;
export const labelsKey = (labels: Labels): string =>
  JSON.stringify(
    Object.entries(labels)
      .sort()
      .map(([k, v]) => [k, v]),
  );

export const sameLabels = (a: Labels, b: Labels): boolean => labelsKey(a) === labelsKey(b);

export class Model {
  records: Map<string, ModelRecord>;
  byEntry: Map<string, ModelRecord[]>;
  ops: Map<number, ModelOp>;
  counts: {
    ackedRecords: number;
    indeterminateRecords: number;
    rejectedRecords: number;
    ackedDeletes: number;
    ackedPatches: number;
    retryLater: number;
  };
  runtime: RuntimeFinding[];

  constructor() {
    /** key → record: { b, e, ts, size, ct, sha, fifo, exists: yes|no|maybe, labelOptions, ... } */
    this.records = new Map();
    /** "bucket/entry" → its records, in journal order. */
    this.byEntry = new Map();
    this.ops = new Map();
    this.counts = {
      ackedRecords: 0,
      indeterminateRecords: 0,
      rejectedRecords: 0,
      ackedDeletes: 0,
      ackedPatches: 0,
      retryLater: 0,
    };
    this.runtime = [];
  }

  apply(line: string): void {
    const [kind = "", id = "", third] = line.split(" ", 3);
    const rest = line.slice(kind.length + id.length + (third === undefined ? 1 : third.length + 2) + 1);
    if (kind === "INTENT") {
      if (third === undefined || !isOpName(third)) throw new Error(`journal: unknown operation in '${line.slice(0, 200)}'`);
      this.intent(Number(id), { op: third, data: JSON.parse(rest) });
    } else if (kind === "ACK") this.ack(Number(id), Number(third), JSON.parse(rest));
    else if (kind === "FAIL") this.fail(Number(id));
    else if (kind === "RESOLVE") this.resolve(JSON.parse(line.slice(kind.length + id.length + 2)));
  }

  recordsOf(op: ModelOp): WrittenRecord[] {
    if (op.op === "write" || op.op === "dup") return [{ ...op.data, dup: op.op === "dup" }];
    if (op.op === "batch1") {
      const { b, e } = op.data;
      return op.data.records.map((r) => ({ ...r, b, e }));
    }
    if (op.op === "batch2") {
      const { b } = op.data;
      return op.data.records.map((r) => ({ ...r, b }));
    }
    return [];
  }

  intent(id: number, intent: OpIntent): void {
    const op: ModelOp = { ...intent, id, done: false };
    const { data } = intent;
    this.ops.set(id, op);
    for (const r of this.recordsOf(op)) {
      const key = recordKey(r.b, r.e, r.ts);
      if (r.dup) continue;
      if (this.records.has(key)) throw new Error(`journal: timestamp ${r.ts} of ${r.b}/${r.e} written twice (op ${id})`);
      // Only a duplicate (skipped above) goes without them.
      const { ct, labels } = r;
      if (ct === undefined || labels === undefined)
        throw new Error(`journal: op ${id} wrote ${key} without content type or labels`);
      const rec: ModelRecord = {
        key,
        b: r.b,
        e: r.e,
        ts: r.ts,
        size: r.size,
        ct,
        sha: r.sha,
        fifo: r.b === FIFO_BUCKET,
        exists: "maybe",
        labelOptions: [labels],
        writeOp: id,
        history: [id],
        cycle: data.cycle,
        intentAt: data.at,
        touched: data.cycle,
      };
      this.records.set(key, rec);
      const entryKey = `${r.b}/${r.e}`;
      const own = this.byEntry.get(entryKey);
      if (own) own.push(rec);
      else this.byEntry.set(entryKey, [rec]);
    }
    if (op.op === "patch" || op.op === "delete") {
      const rec = this.records.get(recordKey(op.data.b, op.data.e, op.data.ts));
      if (rec) {
        rec.history.push(id);
        rec.touched = data.cycle;
      }
    }
  }

  ack(id: number, status: number, extra: AckExtra): void {
    const op = this.ops.get(id);
    if (!op || op.done) return;
    op.done = true;
    op.status = status;
    if (op.op === "patch" || op.op === "delete") {
      this.finishMutation(op, status);
      return;
    }
    const errors = extra.errors ?? {};
    for (const r of this.recordsOf(op)) {
      const key = recordKey(r.b, r.e, r.ts);
      const perRecord = errors[key];
      const code = perRecord ? Number(perRecord.split(",")[0]) : status;
      if (r.dup) {
        if (code === 200) this.runtime.push({ kind: "duplicate-accepted", key, detail: `op ${id} (${op.op})` });
        // 503 (a dying runtime's proxy answering "retry later"): nothing was done, as for any write.
        else if (code === 503) this.fiveXX(key, `dup op ${id}: 503`, code);
        else if (code !== 409)
          this.runtime.push({ kind: "unexpected-status", key, detail: `dup op ${id}: ${perRecord ?? status}` });
        continue;
      }
      const rec = this.records.get(key);
      if (!rec) throw new Error(`journal: ACK ${id} of a record no INTENT wrote (${key})`);
      if (code === 200) {
        rec.exists = "yes";
        rec.acked = true;
        this.counts.ackedRecords++;
      } else if (code >= 400 && code < 500) {
        rec.exists = "no";
        rec.rejected = `${perRecord ?? status}`;
        this.counts.rejectedRecords++;
        this.runtime.push({ kind: "unexpected-status", key, detail: `op ${id} (${op.op}) refused: ${perRecord ?? status}` });
      } else {
        rec.indeterminate = true;
        this.counts.indeterminateRecords++;
        this.fiveXX(key, `op ${id} (${op.op}): ${perRecord ?? status} ${extra.body ?? ""}`, code);
      }
    }
  }

  /** 503 asks to retry (its write is indeterminate, counted); any other 5xx is a violation. */
  fiveXX(key: string, detail: string, status: number): void {
    if (status === 503) this.counts.retryLater++;
    else this.runtime.push({ kind: "server-5xx", key, detail });
  }

  fail(id: number): void {
    const op = this.ops.get(id);
    if (!op || op.done) return;
    op.done = true;
    op.failed = true;
    if (op.op === "patch" || op.op === "delete") {
      this.finishMutation(op, 0);
      return;
    }
    for (const r of this.recordsOf(op)) {
      if (r.dup) continue;
      const rec = this.records.get(recordKey(r.b, r.e, r.ts));
      if (!rec) throw new Error(`journal: FAIL ${id} of a record no INTENT wrote`);
      rec.indeterminate = true;
      this.counts.indeterminateRecords++;
    }
  }

  /** A write still without ACK/FAIL when the verifier runs is indeterminate too. */
  closeOpen() {
    for (const op of this.ops.values()) if (!op.done) this.fail(op.id);
  }

  finishMutation(op: ModelOp & { op: "patch" | "delete" }, status: number): void {
    const { b, e, ts } = op.data;
    const rec = this.records.get(recordKey(b, e, ts));
    if (!rec) return;
    if (op.op === "patch") {
      const { set, remove } = op.data;
      const apply = (labels: Labels): Labels => {
        const next = { ...labels, ...set };
        for (const name of remove) delete next[name];
        return next;
      };
      if (status === 200) {
        rec.labelOptions = uniqueLabels(rec.labelOptions.map(apply));
        rec.patched = true;
        this.counts.ackedPatches++;
      } else if (status === 0 || status >= 500) {
        rec.labelOptions = uniqueLabels([...rec.labelOptions, ...rec.labelOptions.map(apply)]);
        if (status >= 500) this.fiveXX(rec.key, `patch op ${op.id}: ${status}`, status);
      } else if (rec.exists === "yes") {
        this.runtime.push({ kind: "unexpected-status", key: rec.key, detail: `patch op ${op.id} of a stored record: ${status}` });
      }
    } else {
      if (status === 200) {
        rec.exists = "no";
        rec.deleted = true;
        this.counts.ackedDeletes++;
      } else if (status === 0 || status >= 500) {
        if (rec.exists !== "no") rec.exists = "maybe";
        rec.deleteMaybe = true;
        if (status >= 500) this.fiveXX(rec.key, `delete op ${op.id}: ${status}`, status);
      } else if (rec.exists === "yes") {
        this.runtime.push({
          kind: "unexpected-status",
          key: rec.key,
          detail: `delete op ${op.id} of a stored record: ${status}`,
        });
      }
    }
  }

  resolve({ key, exists, labels, evicted }: Resolution): void {
    const rec = this.records.get(key);
    if (!rec) return;
    rec.exists = exists ? "yes" : "no";
    if (exists && labels) rec.labelOptions = [labels];
    if (evicted) rec.evicted = true;
    rec.resolved = true;
  }

  entryRecords(b: string, e: string): ModelRecord[] {
    return [...(this.byEntry.get(`${b}/${e}`) ?? [])].sort((x, y) => x.ts - y.ts);
  }
}

function uniqueLabels(options: Labels[]): Labels[] {
  const seen = new Map<string, Labels>();
  for (const labels of options) seen.set(labelsKey(labels), labels);
  return [...seen.values()];
}
