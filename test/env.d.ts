import type { D1Migration } from "cloudflare:test";
import type { RsEnv } from "../src/config";

declare global {
  namespace Cloudflare {
    interface Env extends RsEnv {
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
