/**
 * The Worker entry point: serves the API under RS_API_BASE_PATH and exports the bucket object.
 */

import type { Bindings } from "./api/context";
import { createApp } from "./app";

export { BucketObject } from "./bucket/bucket-object";

const app = createApp();

export default {
  fetch(request, env, ctx) {
    // RS_API_BASE_PATH is applied by the app's router (see routePath in app.ts).
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Bindings>;
