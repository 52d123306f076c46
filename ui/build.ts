/**
 * Builds the web console into ui/dist: one minified ES module (app.js), the stylesheet and
 * index.html. Run by `npm install` (prepare), `npm start` and wrangler's [build] command, so the
 * assets directory exists wherever the Worker is served or deployed. Prints the gzipped size.
 */
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const uiDir = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(uiDir, "dist");
// Built beside and moved in file by file (rename is atomic): a server already serving ui/dist
// never sees a missing or half-written file.
const stageDir = path.join(uiDir, `.dist-${process.pid}`);

mkdirSync(stageDir, { recursive: true });
await build({
  entryPoints: [path.join(uiDir, "src", "main.ts")],
  outfile: path.join(stageDir, "app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(path.join(uiDir, "index.html"), path.join(stageDir, "index.html"));
copyFileSync(path.join(uiDir, "style.css"), path.join(stageDir, "app.css"));
mkdirSync(outDir, { recursive: true });
for (const file of ["app.css", "app.js", "index.html"]) renameSync(path.join(stageDir, file), path.join(outDir, file));
rmSync(stageDir, { recursive: true, force: true });

const gzipped = ["index.html", "app.js", "app.css"].reduce(
  (sum, file) => sum + gzipSync(readFileSync(path.join(outDir, file))).length,
  0,
);
if (!process.env.CONSOLE_BUILD_QUIET) console.log(`web console built into ui/dist (${(gzipped / 1024).toFixed(1)} KB gzipped)`);
