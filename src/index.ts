/**
 * The Worker entry point: serves the API under RS_API_BASE_PATH and exports the bucket object.
 */

import type { Bindings } from "./api/context";
import { allowedOrigin } from "./api/cors";
import { withDefaultHeaders } from "./api/respond";
import { createApp, routePath } from "./app";
import { configFromEnv } from "./config";
import { logRequest } from "./request-log";

export { BucketObject } from "./bucket/bucket-object";

const app = createApp();

/**
 * GET/HEAD /api/v1/alive answered without the router and middleware chain: health checks are the
 * most frequent request a load balancer sends. The answer is the app's, header for header
 * (test/integration/server-api.test.ts compares the two).
 */
export function aliveFastPath(request: Request, env: Bindings): Response | null {
  if (request.method !== "GET" && request.method !== "HEAD") return null;
  if (routePath(request, env) !== "/api/v1/alive") return null;
  let allowList: string[] = [];
  try {
    allowList = configFromEnv(env).corsAllowOrigins;
  } catch {
    // /alive answers even with a broken configuration (as the app does); CORS stays closed.
  }
  const headers = new Headers({ "access-control-expose-headers": "*", vary: "origin" });
  const origin = allowedOrigin(allowList, request.headers.get("origin") ?? undefined);
  if (origin) headers.set("access-control-allow-origin", origin);
  return withDefaultHeaders(new Response(null, { status: 200, headers }));
}

export default {
  fetch(request, env, ctx) {
    const startedAt = performance.now();
    const alive = aliveFastPath(request, env);
    if (alive) return logRequest(request, env, alive, startedAt);
    // RS_API_BASE_PATH is applied by the app's router (see routePath in app.ts).
    const response = app.fetch(request, env, ctx);
    return response instanceof Response
      ? logRequest(request, env, response, startedAt)
      : response.then((answered) => logRequest(request, env, answered, startedAt));
  },
} satisfies ExportedHandler<Bindings>;
