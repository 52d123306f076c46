/**
 * Token API (§7): create, list, get, delete, rotate. All need full access.
 */
import { Hono } from "hono";
import type { AppEnv } from "./context";

export const tokenRoutes = new Hono<AppEnv>();
