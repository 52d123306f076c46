/**
 * Start-time probe: the no-op Worker run with reduct-edge's bindings. It exports the object class
 * the BUCKETS namespace names (never called) so workerd starts it without a warning.
 */
export class BucketObject {
  fetch(): Response {
    return new Response("ok");
  }
}

export default {
  fetch(): Response {
    return new Response("ok");
  },
};
