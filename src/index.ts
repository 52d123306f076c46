/**
 * The Worker entry point: serves the API under RS_API_BASE_PATH and exports the bucket object.
 */

import type { Bindings } from "./api/context";
import { createApp } from "./app";
import { normaliseBasePath } from "./config";

export { BucketObject } from "./bucket/bucket-object";

const app = createApp();

/** Strips RS_API_BASE_PATH so routes can be written as /api/v1/...; other paths 404 as usual. */
function rebase(request: Request, basePath: string): Request {
  if (basePath === "/") return request;
  const url = new URL(request.url);
  if (!url.pathname.startsWith(basePath)) return request;
  url.pathname = `/${url.pathname.slice(basePath.length)}`;
  return new Request(url, request);
}

export default {
  fetch(request, env, ctx) {
    return app.fetch(rebase(request, normaliseBasePath(env.RS_API_BASE_PATH)), env, ctx);
  },
} satisfies ExportedHandler<Bindings>;
