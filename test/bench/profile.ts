import { readFile } from "node:fs/promises";
import path from "node:path";

/**
 * Self time of a V8 CPU profile (`.cpuprofile`, as `node --cpu-prof` or the inspector writes it), by package and
 * by function. A sample's whole interval goes to the function on top of the stack (its self time).
 * Packages: `node_modules/<name>` (scoped names kept), `node:<module>` for Node's own JavaScript, `passerelle
 * <dir>` for the project's code, `(gc)`, `(program)` (native code outside JavaScript: syscalls, libuv, the
 * parser of the HTTP server…), `(idle)`, and `(v8 builtins)` for functions without a script (JSON.parse, …).
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  durationMs: number;
  /** Share of the wall time spent running (not idle): about the cores used by this one thread. */
  busyPct: number;
  byPackage: SelfTime[];
  byFunction: (SelfTime & { package: string })[];
}

const ROOT = path.resolve(import.meta.dirname, "../..");

/** The project file a script URL is, relative to the first of `roots` that holds it (the compiled mirror first). */
function projectPath(url: string, roots: readonly string[]): string | undefined {
  const file = url.startsWith("file://") ? new URL(url).pathname : url;
  for (const root of roots) {
    const rel = path.relative(root, file);
    if (!rel.startsWith("..") && !path.isAbsolute(rel)) return rel;
  }
  return undefined;
}

export function packageOf(cf: CallFrame, roots: readonly string[] = [ROOT]): string {
  const url = cf.url;
  if (!url) {
    if (cf.functionName === "(garbage collector)") return "(gc)";
    if (cf.functionName === "(program)") return "(program)";
    if (cf.functionName === "(idle)") return "(idle)";
    if (cf.functionName === "(root)") return "(root)";
    return "(v8 builtins)";
  }
  if (url.startsWith("node:")) {
    const m = /^node:(?:internal\/)?([^/]+)/.exec(url);
    return `node:${m?.[1] ?? url.slice(5)}`;
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "/node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  const rel = projectPath(url, roots);
  if (rel !== undefined) {
    const parts = rel.split(path.sep);
    return `passerelle ${parts.length > 2 ? `${parts[0]}/${parts[1]}` : (parts[0] ?? rel)}`;
  }
  return url;
}

/** `function file:line` (line of the compiled JavaScript when the process ran compiled code). */
function label(cf: CallFrame, roots: readonly string[]): string {
  const fn = cf.functionName || "(anonymous)";
  if (!cf.url) return fn;
  const nm = cf.url.lastIndexOf("/node_modules/");
  const where = nm >= 0 ? cf.url.slice(nm + 14) : (projectPath(cf.url, roots) ?? cf.url);
  return `${fn} ${where}:${cf.lineNumber + 1}`;
}

/** `roots`: where project files may lie (the compiled mirror, the repository). */
export async function summarizeProfile(
  file: string,
  top = 20,
  roots: readonly string[] = [ROOT],
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; the interval after a sample is the next delta.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  const pkg = new Map<string, number>();
  const fns = new Map<string, { ms: number; package: string }>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const p = packageOf(node.callFrame, roots);
    const ms = us / 1000;
    if (p === "(idle)") idle += ms;
    pkg.set(p, (pkg.get(p) ?? 0) + ms);
    const key = label(node.callFrame, roots);
    const f = fns.get(key) ?? { ms: 0, package: p };
    f.ms += ms;
    fns.set(key, f);
  }
  const busy = total - idle;
  const pct = (ms: number) => (busy > 0 ? (100 * ms) / busy : Number.NaN);
  return {
    durationMs: total,
    busyPct: total > 0 ? (100 * busy) / total : Number.NaN,
    byPackage: [...pkg]
      .filter(([name]) => name !== "(idle)")
      .map(([name, ms]) => ({ name, ms, pct: pct(ms) }))
      .sort((a, b) => b.ms - a.ms),
    byFunction: [...fns]
      .filter(([, f]) => f.package !== "(idle)")
      .map(([name, f]) => ({ name, ms: f.ms, pct: pct(f.ms), package: f.package }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}
