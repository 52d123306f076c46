/**
 * Every workload of `npm run bench` and the order they run in.
 *
 * A workload ("unit") is `{ id, title, server, requires?, fullOnly?, prepare?, spec, finish? }`:
 *  - `server`: a key of serverDefinitions() in lib/servers.ts;
 *  - `requires(features)`: optional; undefined when the server has the endpoints the unit needs
 *    (see probes.ts), else the reason — the run then prints "not implemented by the server yet"
 *    with the probe's answer instead of numbers;
 *  - `fullOnly`: left out of `--quick` (diagnostics);
 *  - `prepare(ctx)`: optional setup (create its bucket);
 *  - `spec(ctx)`: the measure spec (lib/measure.ts), without server/id/title;
 *  - `finish(ctx, result)`: optional; record shared data (W2 → W4/W6) or extra result fields.
 * SCHEDULE steps list unit ids measured together, interleaved in rounds (lib/measure.ts), so
 * the ratios between them do not drift with the machine. Units of one step that count "every
 * object" of a server (the baselines) must be on different servers.
 * To add a workload: write its unit, list it in a step, give it `compareTo` ids for the ratio
 * column and add its target to lib/targets.ts.
 */
import type { Scale, Step, Unit } from "../lib/types.ts";
import { baselineUnits } from "./baselines.ts";
import { bucketsUnit } from "./buckets.ts";
import { reductEdgeUnits } from "./reduct-edge.ts";
import { startupUnit } from "./startup.ts";

export function units(scale: Scale): Unit[] {
  return [...baselineUnits(scale), ...reductEdgeUnits(scale), bucketsUnit(), startupUnit()];
}

export function schedule(scale: Scale): Step[] {
  return [
    { ids: ["a", "alive", "b", "c", "W1", "W2v1", "W2v2", "W2gzip", "W2zstd"], rounds: scale.rounds },
    ...scale.large.map(([label, , count]) => ({
      ids: [`c-raw-${label}`, `c-piped-${label}`, `W3-${label}`],
      rounds: Math.min(count, scale.rounds),
    })),
    { ids: ["W4v1"] },
    { ids: ["W4v2"] },
    { ids: ["W6labelsv1"] },
    { ids: ["W6labelsv2"] },
    { ids: ["W6remove"] },
    { ids: ["W5"] },
    { ids: ["W5s"] },
    { ids: ["W7scan"] },
    { ids: ["R1"] },
    { ids: ["W7buckets"] },
    { ids: ["start"] },
  ];
}
