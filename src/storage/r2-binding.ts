/**
 * The one way code reaches the payload bucket. Tests may wrap the binding to count operations or
 * inject faults (never to replace storage); production never sets a wrapper.
 */

/** The payload bucket as code outside src/storage/ holds it: something to hand back to storage. */
export type PayloadBucket = R2Bucket;

type R2Wrapper = (bucket: R2Bucket) => R2Bucket;

let wrapper: R2Wrapper | undefined;

export function recordsBucket(env: { RECORDS: R2Bucket }): R2Bucket {
  return wrapper ? wrapper(env.RECORDS) : env.RECORDS;
}

/** Tests only: wrap every use of the R2 binding (pass undefined to stop). */
export function setR2Wrapper(next: R2Wrapper | undefined): void {
  wrapper = next;
}
