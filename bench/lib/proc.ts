/**
 * Linux /proc readers for the server process (workerd, a child of this Node process under
 * Miniflare): pid discovery, resident set size, peak RSS reset and CPU time.
 */
import fs from "node:fs";

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

function readStat(pid) {
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
export function childPids(comm, parent = process.pid) {
  const pids = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (stat && stat.ppid === parent && stat.comm === comm) pids.push(Number(name));
  }
  return pids;
}

/** VmRSS and VmHWM (peak RSS) in bytes, or undefined when the process is gone. */
export function memory(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return undefined;
  }
}

/** Resets the peak-RSS mark (VmHWM) of a process we started (Linux ≥ 4.0); false if refused. */
export function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU time of a process in milliseconds. */
export function cpuMs(pid) {
  const stat = readStat(pid);
  return stat ? ((stat.utime + stat.stime) * 1000) / CLOCK_TICKS_PER_SECOND : Number.NaN;
}

/**
 * Samples VmRSS every `intervalMs` until stopped; `stop()` returns the peak seen, including the
 * kernel's own peak mark (VmHWM) when it could be reset at the start.
 */
export function sampleRss(pid, intervalMs = 10) {
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
    stop() {
      clearInterval(timer);
      const end = memory(pid);
      if (end && end.rss > peak) peak = end.rss;
      if (hwmReset && end && end.hwm > peak) peak = end.hwm;
      const baseline = start?.rss ?? Number.NaN;
      return { baselineBytes: baseline, peakBytes: peak, growthBytes: peak - baseline, samples, hwmReset };
    },
  };
}
