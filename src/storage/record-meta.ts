/**
 * ReductStore's size accounting counts, per record, the content bytes plus the length of the
 * protobuf descriptor it keeps in its block index. Clients assert exact entry and bucket
 * sizes, so we compute that length without encoding anything: proto3 omits default fields, and
 * every present field costs one tag byte plus its (length-prefixed) payload.
 */

/** Content type ReductStore stores when a record has none (24 bytes ⇒ a 26-byte field). */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

const MICROS_PER_SECOND = 1_000_000;
const NANOS_PER_MICRO = 1_000;
/** Every field number in the descriptor is < 16, so each tag is one byte. */
const TAG_BYTES = 1;
/** `state = FINISHED` (enum value 1): one tag byte + one varint byte. */
const FINISHED_STATE_BYTES = 2;
const VARINT_RADIX = 128;

export interface RecordMetaInput {
  /** Record timestamp in µs. */
  ts: number;
  /** Content bytes already in the record's block before it (0 for the block's first record). */
  begin: number;
  /** `begin` + the record's content length. */
  end: number;
  labels: Readonly<Record<string, string>>;
  contentType: string;
  /** True once the record is finished: a label update re-encodes it with `state = FINISHED`. */
  finished: boolean;
}

const encoder = new TextEncoder();

/** Length in bytes of `n` (a non-negative safe integer) as a protobuf varint. */
export function varintLength(n: number): number {
  let length = 1;
  while (n >= VARINT_RADIX) {
    n = Math.floor(n / VARINT_RADIX);
    length++;
  }
  return length;
}

/** A scalar varint field: absent when 0. */
const varintField = (n: number): number => (n === 0 ? 0 : TAG_BYTES + varintLength(n));

/** A length-delimited field whose payload is `length` bytes: absent when empty unless `always`. */
const bytesField = (length: number, always = false): number =>
  length === 0 && !always ? 0 : TAG_BYTES + varintLength(length) + length;

const utf8Length = (text: string): number => encoder.encode(text).length;

/** Length of ReductStore's protobuf `Record` descriptor for one record (see module comment). */
export function recordMetaLength(meta: RecordMetaInput): number {
  const seconds = Math.floor(meta.ts / MICROS_PER_SECOND);
  const nanos = (meta.ts % MICROS_PER_SECOND) * NANOS_PER_MICRO;
  // The Timestamp message is always present, even when both of its fields are defaults.
  let length = bytesField(varintField(seconds) + varintField(nanos), true);
  length += varintField(meta.begin);
  length += varintField(meta.end);
  if (meta.finished) length += FINISHED_STATE_BYTES;
  for (const [name, value] of Object.entries(meta.labels)) {
    length += bytesField(bytesField(utf8Length(name)) + bytesField(utf8Length(value)), true);
  }
  length += bytesField(utf8Length(meta.contentType));
  return length;
}
