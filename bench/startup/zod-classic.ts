/**
 * Start-time probe: zod's classic API (what src/ imports), one object schema built at module
 * scope as src/ does, parsed per request. Compare with zod-mini.ts and the no-op baseline.
 */
import { z } from "zod";

const Settings = z.object({ quota_type: z.enum(["NONE", "FIFO", "HARD"]).optional(), quota_size: z.number().int().optional() });

export default {
  fetch(): Response {
    return new Response(Settings.safeParse({ quota_size: 1 }).success ? "ok" : "bad");
  },
};
