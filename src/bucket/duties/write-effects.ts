/** What a committed write or removal sets in motion: seals of full blocks, the usage flush, the alarm. */
import { SEAL_IDLE_MS } from "../../storage/blocks";
import type { RecordIndex } from "../record-index";
import type { OpsEffects } from "../record-ops";
import type { Garbage } from "./garbage";
import type { Sealing } from "./sealing";
import type { UsageFlush } from "./usage-flush";

export interface WriteEffectsDeps {
  index: RecordIndex;
  sealing: Sealing;
  usage: UsageFlush;
  garbage: Garbage;
  scheduleAlarm: (atMs: number) => Promise<void>;
}

export function newEffects(): OpsEffects {
  return { blocksToSeal: [], usageChanged: false, statsMarked: false, written: new Map() };
}

export class WriteEffects {
  constructor(private readonly deps: WriteEffectsDeps) {}

  async afterWrite(effects: OpsEffects): Promise<void> {
    for (const blockId of effects.blocksToSeal) this.deps.sealing.kick(blockId);
    // A write that changed anything schedules the alarm within STATS_FLUSH_DELAY_MS, and the alarm
    // plans the idle seals: no index query per write for them here.
    if (effects.usageChanged) await this.deps.usage.changed(!effects.statsMarked);
    else {
      const idleSealAt = this.deps.index.nextIdleSealAt(SEAL_IDLE_MS);
      if (idleSealAt !== null) await this.deps.scheduleAlarm(idleSealAt);
    }
  }

  async afterRemoval(): Promise<void> {
    await this.deps.usage.changed();
    const garbageAt = this.deps.garbage.nextGarbageAt();
    if (garbageAt !== null) await this.deps.scheduleAlarm(garbageAt);
  }
}
