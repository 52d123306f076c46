/**
 * Replication API, before replication is built: the list is empty and every replication is
 * unknown, so clients that list (and clean up) replications before their work, as reduct-py's test
 * fixture does, see a server without any. Creating one is refused plainly rather than accepted and
 * never sent. Full access only, as every replication call.
 */
import { Hono } from "hono";
import { requireFullAccess } from "../auth/policy";
import { notFound, unprocessable } from "../errors";
import type { AppContext, AppEnv } from "./context";

export const replicationRoutes = new Hono<AppEnv>();

export const REPLICATION_UNSUPPORTED = "Replication is not supported by this server yet";

function authorize(c: AppContext): void {
  requireFullAccess(c.get("caller"));
}

function unknown(name: string): never {
  throw notFound(`Replication '${name}' does not exist`);
}

// GET /api/v1/replications
replicationRoutes.get("/", (c) => {
  authorize(c);
  return c.json({ replications: [] });
});

// GET|DELETE /api/v1/replications/:name, PATCH …/:name/mode — nothing to find
replicationRoutes.get("/:name", (c) => {
  authorize(c);
  return unknown(c.req.param("name"));
});
replicationRoutes.delete("/:name", (c) => {
  authorize(c);
  return unknown(c.req.param("name"));
});
replicationRoutes.patch("/:name/mode", (c) => {
  authorize(c);
  return unknown(c.req.param("name"));
});

// POST|PUT /api/v1/replications/:name — refused, nothing stored
replicationRoutes.post("/:name", (c) => {
  authorize(c);
  throw unprocessable(REPLICATION_UNSUPPORTED);
});
replicationRoutes.put("/:name", (c) => {
  authorize(c);
  return unknown(c.req.param("name"));
});
