// The one percentile of the harness (smoke, soak, bench, end-to-end bench): nearest rank.

/** Percentile `p` (0–100) by nearest rank of `values` (any order; a sorted copy is used), NaN when empty. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}
