/**
 * Record types shared by the edge and the bucket object. A leaf module: it imports nothing from
 * `src`, so every layer may use it.
 */

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 416 | 422 | 425 | 429 | 431 | 500 | 503;

/**
 * A failure as it crosses the Durable Object RPC boundary. Thrown errors lose their class over RPC,
 * so object methods return `{ ok: false, error }` for expected outcomes instead.
 */
export interface ErrorInfo {
  status: ErrorStatus;
  message: string;
}

export type Labels = Record<string, string>;

/** What the edge sends for a record: validated metadata (and the bytes, for staged records). */
export interface RecordMeta {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

/** The outcome of one item of a write, update or removal. */
export type ItemOutcome = { ok: true } | { ok: false; error: ErrorInfo };

/** Label ops of an update as pairs (an empty value removes): plain data over RPC, never object keys. */
export type LabelChanges = Array<[string, string]>;

/** A small record whose bytes travel with the write call. */
export interface StagedItem {
  meta: RecordMeta;
  payload: ArrayBuffer;
}

/** What the edge needs to stream a large record to R2 after its timestamp and quota are reserved. */
export interface UploadTicket {
  objectKey: string;
  leaseMs: number;
}

/** A record as reads return it. */
export interface RecordView {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
}

/** Where a read finds the bytes: inline (staged in SQLite), a range of an R2 object, or none (HEAD/empty). */
export type BodyLocation =
  | { kind: "none" }
  | { kind: "inline"; bytes: ArrayBuffer }
  | { kind: "r2"; key: string; offset: number };
