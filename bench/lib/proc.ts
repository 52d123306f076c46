/**
 * Linux /proc readers for the server process (workerd, a child of this Node process under
 * Miniflare): pid discovery, resident set size, peak RSS reset and CPU time.
 */
import fs from "node:fs";

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

function readStat(pid: number | string): { comm: string; ppid: number; utime: number; stime: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    return { comm, ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** Pids of this process's direct children whose command name is `comm`. */
export function childPids(comm: string, parent = process.pid): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (stat && stat.ppid === parent && stat.comm === comm) pids.push(Number(name));
  }
  return pids;
}

/** VmRSS and VmHWM (peak RSS) in bytes, or undefined when the process is gone. */
export function memory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return undefined;
  }
}

/** Resets the peak-RSS mark (VmHWM) of a process we started (Linux ≥ 4.0); false if refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU time of a process in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readStat(pid);
  return stat ? ((stat.utime + stat.stime) * 1000) / CLOCK_TICKS_PER_SECOND : Number.NaN;
}

/**
 * Samples VmRSS every `intervalMs` until stopped; `stop()` returns the peak seen, including the
 * kernel's own peak mark (VmHWM) when it could be reset at the start.
 */
/** What sampleRss saw: the RSS at the start and its peak (bytes). */
export interface RssSample {
  baselineBytes: number;
  peakBytes: number;
  growthBytes: number;
  samples: number;
  hwmReset: boolean;
}

export function sampleRss(pid: number, intervalMs = 10): { stop(): RssSample } {
  const hwmReset = resetPeakRss(pid);
  const start = memory(pid);
  let peak = start?.rss ?? Number.NaN;
  let samples = 0;
  const timer = setInterval(() => {
    const now = memory(pid);
    if (!now) return;
    samples++;
    if (now.rss > peak) peak = now.rss;
  }, intervalMs);
  return {
    stop(): RssSample {
      clearInterval(timer);
      const end = memory(pid);
      if (end && end.rss > peak) peak = end.rss;
      if (hwmReset && end && end.hwm > peak) peak = end.hwm;
      const baseline = start?.rss ?? Number.NaN;
      return { baselineBytes: baseline, peakBytes: peak, growthBytes: peak - baseline, samples, hwmReset };
    },
  };
}
