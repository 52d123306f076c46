/**
 * Header codecs of the HTTP edge for records and batches (single-record API, batch v1 and v2,
 * per-record errors). Pure functions: no I/O; failures are `HttpError` 422 (431 over budget).
 */
export * from "./batch-v1";
export * from "./batch-v2";
export {
  assertLabelCaps,
  compareCodePoints,
  HEADER_LINE_OVERHEAD_BYTES,
  headerBytes,
  LABEL_HEADER_OVERHEAD_BYTES,
  type Labels,
  type LabelUpdate,
  MAX_BATCH_HEADER_BYTES,
  MAX_LABEL_NAME_BYTES,
  MAX_LABEL_TOTAL_BYTES,
  MAX_LABEL_VALUE_BYTES,
  MAX_LABELS_PER_RECORD,
  parseSafeDecimal,
} from "./common";
export * from "./entry-name";
export * from "./name-encoding";
export * from "./record-errors";
export * from "./single-record";
