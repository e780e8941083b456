import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

/** Shared helpers of the bench: mode, statistics, formatting, and what Linux's /proc says about a process. */

/** `BENCH_QUICK=1`: the ~1 minute smoke version (same sections, fewer samples). */
export const QUICK = process.env.BENCH_QUICK === "1";

/** The three ways to reach the same simulated model, measured side by side. */
export type TargetName = "direct" | "passerelle" | "ceiling";
export const TARGETS: readonly TargetName[] = ["direct", "passerelle", "ceiling"];

/** Round `r`'s order: rotated each round, so that no target always runs first (or right after another). */
export function rotation(r: number): TargetName[] {
  const k = r % TARGETS.length;
  return [...TARGETS.slice(k), ...TARGETS.slice(0, k)];
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, v) => a + v, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}

/** A number rounded for tables and JSON (NaN/Infinity kept as null in JSON by JSON.stringify). */
export function fx(v: number, digits = 2): number {
  return Number.isFinite(v) ? Number(v.toFixed(digits)) : v;
}

/** `a / b` as `1.23×`. */
export function times(a: number, b: number, digits = 2): string {
  return Number.isFinite(a / b) ? `${(a / b).toFixed(digits)}×` : "n/a";
}

/** A signed difference, e.g. `+0.41`. */
export function signed(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return "n/a";
  const s = v.toFixed(digits);
  return v >= 0 ? `+${s}` : s;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const loadAverage = () => os.loadavg().map((v) => fx(v, 2));

let clockTicks: number | undefined;
/** Kernel clock ticks per second (the unit of utime/stime in /proc/PID/stat). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU time (user + system, every thread: JS, libuv pool, GC helpers) a process has used so far, in ms, from
 * /proc/PID/stat (resolution: one clock tick, 10 ms on Linux; fine over runs of several seconds). NaN off Linux.
 */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time the whole machine has spent busy so far (user, nice, system, irq, softirq, steal of every core), in ms,
 * from /proc/stat. Minus the bench's own processes, it tells how much else ran meanwhile. NaN off Linux.
 */
export function machineCpuMs(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return (busy * 1000) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** Resident set size now and its high-water mark, in MiB, from /proc/PID/status. NaN off Linux. */
export function processRss(pid: number): { rssMiB: number; hwmMiB: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: kb("VmRSS") / 1024, hwmMiB: kb("VmHWM") / 1024 };
  } catch {
    return { rssMiB: Number.NaN, hwmMiB: Number.NaN };
  }
}

/** Samples the RSS of some processes every `everyMs` and keeps each one's peak. */
export function startRssSampler(pids: Record<string, number>, everyMs = 100) {
  const peaks: Record<string, number> = {};
  /** Each process's peak within each phase (see `phase`). */
  const byPhase: Record<string, Record<string, number>> = {};
  let current = "start";
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const { rssMiB } = processRss(pid);
      if (!Number.isFinite(rssMiB)) continue;
      if (!(rssMiB <= (peaks[name] ?? 0))) peaks[name] = rssMiB;
      let inPhase = byPhase[current];
      if (!inPhase) {
        inPhase = {};
        byPhase[current] = inPhase;
      }
      if (!(rssMiB <= (inPhase[name] ?? 0))) inPhase[name] = rssMiB;
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    peaks,
    byPhase,
    /** Names the phase the next samples belong to (one sample closes the previous one). */
    phase(name: string) {
      sample();
      current = name;
    },
    /** Peaks since the last reset (then starts a new window). */
    stop() {
      clearInterval(timer);
      sample();
      return { ...peaks };
    },
  };
}
