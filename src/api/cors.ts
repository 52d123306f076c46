/**
 * CORS as ReductStore does it: every OPTIONS is a preflight answered here with 200 and `*`
 * methods/headers; an allowed Origin is echoed (or `*` when configured); other origins simply get
 * no Access-Control-Allow-Origin. All responses expose every header so browsers can read x-reduct-*.
 */
import type { MiddlewareHandler } from "hono";
import { configFromEnv } from "../config";
import type { AppEnv } from "./context";
import { withHeaders } from "./respond";

export function allowedOrigin(allowList: string[], origin: string | undefined): string | undefined {
  if (allowList.includes("*")) return "*";
  return origin !== undefined && allowList.includes(origin) ? origin : undefined;
}

export const cors: MiddlewareHandler<AppEnv> = async (c, next) => {
  let allowList: string[] = [];
  try {
    allowList = configFromEnv(c.env).corsAllowOrigins;
  } catch {
    // A config error is reported by the config middleware; CORS just stays closed.
  }
  const origin = allowedOrigin(allowList, c.req.header("origin"));
  if (c.req.method === "OPTIONS") {
    const headers = new Headers({
      "access-control-allow-methods": "*",
      "access-control-allow-headers": "*",
      vary: "origin, access-control-request-method, access-control-request-headers",
    });
    if (origin) headers.set("access-control-allow-origin", origin);
    return new Response(null, { status: 200, headers });
  }
  await next();
  const response = withHeaders(c.res, (headers) => {
    headers.set("access-control-expose-headers", "*");
    if (origin) headers.set("access-control-allow-origin", origin);
    headers.append("vary", "origin");
  });
  if (response !== c.res) c.res = response;
};
