/**
 * Every workload of `npm run bench`, in run order, grouped by the server it runs on.
 *
 * A workload is `{ id, title, server, requires?, run }`:
 *  - `server`: a key of serverDefinitions() in lib/servers.mjs;
 *  - `requires(features)`: optional; returns undefined when the server has what the workload
 *    needs, else the reason (the probe's answer) — the run then prints "not implemented by the
 *    server yet" instead of numbers;
 *  - `run(ctx)`: returns a list of results made with `ctx.measure(spec)` (lib/measure.mjs);
 *  - `fullOnly`: optional; diagnostics left out of `--quick`.
 * To add a workload: write it in a module here and list it below; give it `compareTo` ids so
 * the table shows its ratios, and add its target to lib/targets.mjs.
 */
import { baselineWorkloads } from "./baselines.mjs";
import { reductEdgeWorkloads } from "./reduct-edge.mjs";

export const SERVER_ORDER = ["noop", "doRow", "naive", "reductEdge"];

export const WORKLOADS = [...baselineWorkloads, ...reductEdgeWorkloads];
