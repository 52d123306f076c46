/**
 * `start`: how long a fresh isolate of the real bundle takes to answer, against the no-op Worker
 * and bundles of only zod's classic API and only zod/mini (issue 17: the bundle is mostly zod).
 *
 * Each sample is a fresh Miniflare with its own `workerd` process: wall time from `new Miniflare`
 * to the first answer of `GET /api/v1/alive` (workerd compiles the script and runs its top level
 * before it listens), and the CPU time of that process's threads at that moment, which a loaded
 * machine disturbs less than wall time (and which leaves out Miniflare's own work in Node). The variants are sampled in turn with the order
 * rotated every round; the medians minus the no-op's are what each bundle adds. The composition of
 * the product bundle comes from wrangler's esbuild metafile.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { bundleTsWorker, newMiniflare } from "../../scripts/lib/launcher.ts";
import { percentile } from "../../scripts/lib/stats.ts";
import { LOOPBACK } from "../lib/http-load.ts";
import { childPids } from "../lib/proc.ts";
import { BENCH_DIR, ROOT, serverDefinitions } from "../lib/servers.ts";
import type { BundleComposition, Context, Session, StartupSummary, StartupVariant, Unit } from "../lib/types.ts";

interface Variant {
  name: string;
  script: string;
  bytes: number;
  gzipBytes: number;
  worker: Parameters<typeof newMiniflare>[1];
}

/** The product bundle (wrangler.toml's main, as `npm run build` makes it, or minified) and its metafile. */
function buildProduct(outDir: string, minify = false): { script: string; metafile: string } {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  const metafile = path.join(outDir, "meta.json");
  const flags = minify ? ["--minify"] : [];
  const result = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", outDir, "--metafile", metafile, ...flags], {
    cwd: ROOT,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`wrangler build failed:\n${result.stdout}\n${result.stderr}`);
  return { script: path.join(outDir, "index.js"), metafile };
}

/** Bytes of the bundle by origin: zod (and its non-English locales), hono, src/. */
function composition(script: string, metafile: string): BundleComposition {
  const meta = JSON.parse(fs.readFileSync(metafile, "utf8")) as {
    outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
  };
  const output = Object.entries(meta.outputs).find(([name]) => name.endsWith("index.js"))?.[1];
  if (!output) throw new Error("the metafile has no index.js output");
  const bytes = { zod: 0, zodLocales: 0, hono: 0, src: 0, other: 0 };
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    if (input.includes("node_modules/zod/")) {
      bytes.zod += bytesInOutput;
      if (input.includes("/locales/") && !input.endsWith("/en.js")) bytes.zodLocales += bytesInOutput;
    } else if (input.includes("node_modules/hono/")) bytes.hono += bytesInOutput;
    else if (input.startsWith("src/")) bytes.src += bytesInOutput;
    else bytes.other += bytesInOutput;
  }
  const text = fs.readFileSync(script);
  return { bytes: text.length, gzipBytes: gzipSync(text).length, ...bytes };
}

/**
 * CPU time of every live thread of `pid` in ms, from /proc/<pid>/task/<tid>/schedstat (ns; the
 * clock-tick counters of /proc/<pid>/stat are 10 ms coarse). NaN when unreadable.
 */
function threadsCpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const first = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0];
      ns += Number(first);
    }
    return ns / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** One fresh instance: ms to the first answer, workerd CPU ms then, ms of a second (warm) request. */
async function sample(
  variant: Variant,
  persist: string,
): Promise<{ firstMs: number; cpuMs: number; harnessCpuMs: number; warmMs: number }> {
  const before = new Set(childPids("workerd"));
  const harnessBefore = process.cpuUsage();
  const started = performance.now();
  const mf = newMiniflare(ROOT, {
    host: LOOPBACK,
    port: 0,
    defaultPersistRoot: persist,
    scriptPath: variant.script,
    modulesRoot: path.dirname(variant.script),
    ...variant.worker,
  });
  try {
    const url = await mf.ready;
    const first = await fetch(new URL("/api/v1/alive", url));
    await first.arrayBuffer();
    const firstMs = performance.now() - started;
    const harness = process.cpuUsage(harnessBefore);
    const pid = childPids("workerd").find((p) => !before.has(p));
    const cpu = pid === undefined ? Number.NaN : threadsCpuMs(pid);
    if (first.status !== 200) throw new Error(`${variant.name}: first answer HTTP ${first.status}`);
    const warmStart = performance.now();
    await (await fetch(new URL("/api/v1/alive", url))).arrayBuffer();
    return { firstMs, cpuMs: cpu, harnessCpuMs: (harness.user + harness.system) / 1000, warmMs: performance.now() - warmStart };
  } finally {
    await mf.dispose();
  }
}

const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export function startupUnit(): Unit {
  let variants: Variant[] = [];
  let bundle: BundleComposition | undefined;
  let work = "";
  const summary: StartupSummary = { rounds: 0, variants: [] };
  return {
    id: "start",
    title: "isolate start: fresh workerd, first answer of GET /api/v1/alive (median), real bundle vs no-op and zod alone",
    server: "noop",
    prepare: async (ctx: Context) => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), "reduct-edge-start-"));
      const probe = async (name: string) =>
        bundleTsWorker(path.join(BENCH_DIR, "startup", `${name}.ts`), path.join(work, name, `${name}.js`));
      const product = buildProduct(path.join(work, "product"));
      const minified = buildProduct(path.join(work, "minified"), true);
      bundle = composition(product.script, product.metafile);
      const { inspectorPort: _, ...bindings } = serverDefinitions(work).reductEdge.worker;
      const noop = await probe("noop");
      const sized = (name: string, script: string, worker: Variant["worker"] = {}): Variant => ({
        name,
        script,
        bytes: fs.statSync(script).size,
        gzipBytes: gzipSync(fs.readFileSync(script)).length,
        worker,
      });
      variants = [
        sized("no-op", noop),
        sized("zod (classic) only", await probe("zod-classic")),
        sized("zod/mini only", await probe("zod-mini")),
        sized("reduct-edge bundle, no bindings", product.script),
        // Miniflare runs the R2/D1 simulators and the object namespace as more services in the
        // same workerd: these two rows separate their cost from the bundle's.
        sized("no-op + reduct-edge's bindings", await probe("noop-bindings"), bindings),
        sized("reduct-edge bundle + its bindings", product.script, bindings),
        sized("reduct-edge minified (--minify), no bindings", minified.script),
      ];
      ctx.log(
        `start: product bundle ${(bundle.bytes / 1e3).toFixed(0)} kB (${(bundle.gzipBytes / 1e3).toFixed(0)} kB gzip), zod ${(bundle.zod / 1e3).toFixed(0)} kB of it (${(bundle.zodLocales / 1e3).toFixed(0)} kB non-English locales)`,
      );
    },
    spec: (ctx) => {
      const rounds = ctx.quick ? 5 : 11;
      const session: Session = async (lane, _call, timeLeft) => {
        if (lane !== 0) return;
        const samples = variants.map(() => ({
          firstMs: [] as number[],
          cpuMs: [] as number[],
          harnessCpuMs: [] as number[],
          warmMs: [] as number[],
        }));
        try {
          for (let round = 0; round < rounds && timeLeft() > 0; round++) {
            for (let k = 0; k < variants.length; k++) {
              const index = (k + round) % variants.length;
              const variant = variants[index];
              const into = samples[index];
              if (!variant || !into) continue;
              const got = await sample(variant, path.join(work, "state", `${index}-${round}`));
              into.firstMs.push(got.firstMs);
              into.cpuMs.push(got.cpuMs);
              into.harnessCpuMs.push(got.harnessCpuMs);
              into.warmMs.push(got.warmMs);
            }
            summary.rounds = round + 1;
            ctx.progress(`start: round ${round + 1}/${rounds}`);
          }
        } finally {
          fs.rmSync(work, { recursive: true, force: true });
        }
        summary.bundle = bundle;
        summary.variants = variants.map((variant, i): StartupVariant => {
          const got = samples[i] ?? { firstMs: [], cpuMs: [], harnessCpuMs: [], warmMs: [] };
          return {
            name: variant.name,
            bytes: variant.bytes,
            gzipBytes: variant.gzipBytes,
            firstAnswerMs: median(got.firstMs),
            firstAnswerMinMs: Math.min(...got.firstMs),
            firstAnswerMaxMs: Math.max(...got.firstMs),
            workerdCpuMs: median(got.cpuMs),
            harnessCpuMs: median(got.harnessCpuMs),
            warmRequestMs: median(got.warmMs),
          };
        });
      };
      return { connections: 1, session, maxSeconds: ctx.quick ? 90 : 240, objects: [], extra: { startup: summary } };
    },
    finish: (ctx, result) => {
      // This unit sends no load: the load generator's CPU share is Miniflare's own start work.
      result.notes = result.notes.filter((note) => !note.startsWith("the load generator used"));
      const base = result.startup?.variants[0];
      for (const v of result.startup?.variants ?? [])
        ctx.log(
          `start: ${v.name}: first answer ${v.firstAnswerMs.toFixed(0)} ms (+${(v.firstAnswerMs - (base?.firstAnswerMs ?? 0)).toFixed(0)} vs no-op), workerd CPU ${v.workerdCpuMs.toFixed(0)} ms (+${(v.workerdCpuMs - (base?.workerdCpuMs ?? 0)).toFixed(0)})`,
        );
    },
  };
}
