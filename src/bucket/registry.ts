/**
 * The bucket object's writes to D1: its registry row and, on removal and rename, the mentions of
 * its name in tokens. The SQL lives in src/d1/ (one module per table); this keeps the names the
 * bucket code calls.
 */
export { deleteRegistryRow, type RegistryRow, upsertRegistryRow } from "../d1/buckets";
export { forgetBucketInTokens, renameBucketInTokens } from "../d1/tokens";
