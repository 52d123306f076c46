/**
 * What this server says it is. `API_VERSION` is the minor version whose features are all really
 * implemented (see README "Compatibility"): clients pick protocols from it (reduct-js switches to
 * the batch v2 `/io` API at 1.18), so it must never run ahead of the code.
 */
export const SERVER_VERSION = "1.21.0";
export const API_VERSION = "1.21";
export const SERVER_HEADER = `ReductStore ${SERVER_VERSION}`;
