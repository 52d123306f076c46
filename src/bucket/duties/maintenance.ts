/**
 * Maintenance: the object's one alarm. Each run asks every duty for its work in order, within a
 * time budget, then sets the alarm to the earliest time any duty is due again. Idempotent: a
 * duty redoes nothing that is done, so a repeated or overlapping run is harmless.
 */

/** One alarm run stops starting new work after this long and reschedules itself. */
export const ALARM_BUDGET_MS = 10_000;
/** Retry delay after an alarm task failed (D1 or R2 unavailable). */
export const ALARM_RETRY_MS = 5_000;

export interface MaintenanceDuty {
  name: string;
  /** Does the due work, stopping at `deadline`. */
  run(deadline: number): Promise<void>;
  /** When this duty next has work, or null when it has none. */
  nextDueAt(): number | null;
}

/**
 * Runs the duties in order and returns when the alarm should fire next (null: nothing to do).
 * A failed duty does not stop the others; it makes the alarm retry after ALARM_RETRY_MS.
 */
export async function runMaintenance(duties: readonly MaintenanceDuty[], now: () => number): Promise<number | null> {
  const deadline = now() + ALARM_BUDGET_MS;
  let retryAt: number | null = null;
  for (const duty of duties) {
    if (now() >= deadline) break;
    try {
      await duty.run(deadline);
    } catch (error) {
      console.error(`bucket alarm task failed (${duty.name}):`, error);
      retryAt = now() + ALARM_RETRY_MS;
    }
  }
  return retryAt ?? nextDueAt(duties);
}

/** The earliest time any duty is due, or null. */
export function nextDueAt(duties: readonly MaintenanceDuty[]): number | null {
  let next: number | null = null;
  for (const duty of duties) {
    const at = duty.nextDueAt();
    if (at !== null && (next === null || at < next)) next = at;
  }
  return next;
}
