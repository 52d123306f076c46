/** The Worker's bindings, shared by the edge and the bucket object (neutral: no layer owns it). */
import type { RsEnv } from "./config";

export type Bindings = Env & RsEnv;
