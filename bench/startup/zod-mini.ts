/** Start-time probe: the same schema as zod-classic.ts with zod/mini's functional API. */
import * as z from "zod/mini";

const Settings = z.object({
  quota_type: z.optional(z.enum(["NONE", "FIFO", "HARD"])),
  quota_size: z.optional(z.int()),
});

export default {
  fetch(): Response {
    return new Response(Settings.safeParse({ quota_size: 1 }).success ? "ok" : "bad");
  },
};
