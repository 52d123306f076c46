/**
 * The typed Hono environment shared by every route module: Worker bindings plus the per-request
 * values the middleware chain resolves (validated config, authenticated caller).
 */
import type { Context } from "hono";
import type { Caller } from "../auth/policy";
import type { Config, RsEnv } from "../config";

export type Bindings = Env & RsEnv;

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    config: Config;
    /** Set by the auth middleware on every route except the anonymous ones. */
    caller: Caller;
  };
}

export type AppContext = Context<AppEnv>;
