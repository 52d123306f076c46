/**
 * The web console at `{base}ui/`: static assets (ui/, built into ui/dist) behind the ASSETS binding.
 * Anonymous, as in the reference: the console signs in against the API itself. `GET {base}`
 * redirects to it. Routes see paths with the base stripped (routePath in app.ts).
 */
import { Hono } from "hono";
import type { AppEnv } from "./api/context";
import { basePathFromEnv } from "./config";

/**
 * Only this origin's scripts, styles and API; images from blob: (record previews); no frames, no
 * plugins, no inline code.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const consoleRoutes = new Hono<AppEnv>();

const toConsole = (c: { env: AppEnv["Bindings"] }) => `${basePathFromEnv(c.env)}ui/`;

consoleRoutes.get("/", (c) => new Response(null, { status: 302, headers: { location: toConsole(c) } }));
consoleRoutes.get("/ui", (c) => new Response(null, { status: 302, headers: { location: toConsole(c) } }));

/**
 * Whether the API wants a token, so the console can show its sign-in form without first making an
 * anonymous API call that the browser would log as a failed (401) request. It tells no more than
 * any API answer does.
 */
consoleRoutes.get("/ui/auth.json", (c) =>
  c.json({ token_required: c.get("config").auth.kind !== "disabled" }, 200, {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  }),
);

consoleRoutes.on(["GET", "HEAD"], "/ui/*", async (c) => {
  const assets = c.env.ASSETS as Fetcher | undefined; // absent where no assets are configured
  if (!assets) return c.notFound();
  const consoleBase = toConsole(c);
  const url = new URL(c.req.url);
  // The asset layer knows the files under their own names: `{base}ui/app.js` is `/app.js`.
  const assetPath = url.pathname.startsWith(consoleBase) ? url.pathname.slice(consoleBase.length - 1) : "/";
  const asset = await assets.fetch(new URL(`${assetPath}${url.search}`, url.origin), {
    method: c.req.method,
    headers: pickHeaders(c.req.raw.headers, ["if-none-match", "if-modified-since", "accept-encoding"]),
  });
  const response = new Response(asset.body, asset);
  // Its redirects (index.html → /) point into the asset namespace; they are mapped back.
  const location = response.headers.get("location");
  if (location?.startsWith("/")) response.headers.set("location", `${consoleBase}${location.slice(1)}`);
  if (response.headers.get("content-type")?.startsWith("text/html")) {
    response.headers.set("content-security-policy", CONSOLE_CSP);
  }
  response.headers.set("x-content-type-options", "nosniff");
  response.headers.set("referrer-policy", "no-referrer");
  return response;
});

function pickHeaders(headers: Headers, names: string[]): Headers {
  const picked = new Headers();
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) picked.set(name, value);
  }
  return picked;
}
