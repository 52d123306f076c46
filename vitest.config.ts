import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * Failures a test injects on purpose (R2/D1 outages and timeouts, aborted objects) make the Worker
 * log them, as it should: their messages say "injected" or "fault test", or the error was thrown by
 * a test file's fake binding. Each becomes one labelled line instead of a stack trace, so
 * unexpected errors stand out in the output.
 */
const INJECTED_FAULT = /injected|fault test/i;
function isInjectedFault(log: string): boolean {
  if (INJECTED_FAULT.test(log)) return true;
  const firstFrame = log.split("\n").find((line) => line.trimStart().startsWith("at "));
  return firstFrame !== undefined && /\/test\/.+\.test\.ts:\d+/.test(firstFrame);
}

/** The init token every integration test authenticates with. */
export const TEST_API_TOKEN = "test-init-token";

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            RS_API_TOKEN: TEST_API_TOKEN,
            RS_INSTANCE_NAME: "reduct-edge-test",
            RS_CORS_ALLOW_ORIGIN: "https://first-allowed-origin.com, https://second-allowed-origin.com",
          },
        },
      }),
    ],
    test: {
      setupFiles: ["./test/helpers/apply-migrations.ts"],
      include: ["test/**/*.test.ts"],
      // Node-side tests of the official client against `npm start`, run by `npm run smoke`.
      exclude: ["test/blackbox/**"],
      testTimeout: 30_000,
      // Vitest's default on a 2-core machine is one worker, so files ran strictly one after another,
      // each waiting about 3 s for its own workerd. Two workers overlap those starts and the tests
      // that sleep through real usage windows: 9 m 27 s → 6 m 06 s for the whole suite on 2 cores.
      maxWorkers: 2,
      onConsoleLog(log: string, type: "stdout" | "stderr") {
        if (type !== "stderr" || !isInjectedFault(log)) return;
        process.stderr.write(`  (expected: fault injected by the test) ${log.split("\n", 1)[0]}\n`);
        return false;
      },
    },
  };
});
