/**
 * Token API: create, list, get, delete, rotate. All need full access (checked first, after
 * authentication). With authentication disabled the reference's no-auth behaviour applies: list is
 * empty, delete is a no-op, everything else is 400 `Authentication is disabled`. With auth on, the
 * init token's row is made to match RS_API_TOKEN before each operation (see auth/token-store.ts).
 */
import { Hono } from "hono";
import { requireFullAccess } from "../auth/policy";
import { parseTokenCreateBody } from "../auth/token-request";
import { createToken, deleteToken, ensureInitToken, getToken, listTokens, rotateToken } from "../auth/token-store";
import { badRequest, unprocessable } from "../errors";
import { readBoundedText } from "./body";
import type { AppContext, AppEnv } from "./context";

export const tokenRoutes = new Hono<AppEnv>();

/** Checks full access; returns false when authentication is disabled (the caller handles that case). */
async function authorize(c: AppContext): Promise<boolean> {
  requireFullAccess(c.get("caller"));
  const { auth } = c.get("config");
  if (auth.kind !== "token") return false;
  if (auth.initTokenProvisioned) await ensureInitToken(c.env.DB, auth.initToken);
  return true;
}

const authDisabled = () => badRequest("Authentication is disabled");

// GET /api/v1/tokens
tokenRoutes.get("/", async (c) => {
  if (!(await authorize(c))) return c.json({ tokens: [] });
  return c.json({ tokens: await listTokens(c.env.DB) });
});

// POST /api/v1/tokens — a create without a name. (`/tokens/` is a 404, routing is strict.)
tokenRoutes.post("/", async (c) => {
  if (!(await authorize(c))) throw authDisabled();
  throw unprocessable("Token name can't be empty");
});

// POST /api/v1/tokens/:name
tokenRoutes.post("/:name", async (c) => {
  if (!(await authorize(c))) throw authDisabled();
  const request = parseTokenCreateBody(await readBoundedText(c.req.raw));
  return c.json(await createToken(c.env.DB, c.req.param("name"), request));
});

// GET /api/v1/tokens/:name
tokenRoutes.get("/:name", async (c) => {
  if (!(await authorize(c))) throw authDisabled();
  return c.json(await getToken(c.env.DB, c.req.param("name")));
});

// DELETE /api/v1/tokens/:name
tokenRoutes.delete("/:name", async (c) => {
  if (await authorize(c)) await deleteToken(c.env.DB, c.req.param("name"));
  return c.body(null, 200);
});

// POST /api/v1/tokens/:name/rotate — the body is ignored.
tokenRoutes.post("/:name/rotate", async (c) => {
  if (!(await authorize(c))) throw authDisabled();
  return c.json(await rotateToken(c.env.DB, c.req.param("name")));
});
