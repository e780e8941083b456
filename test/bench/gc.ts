import type { ChildHandle } from "./children.js";
import { fx } from "./common.js";

/** Collections of one kind: how many, their summed and longest pause (ms). */
export interface GcKindTally {
  count: number;
  ms: number;
  maxMs: number;
}

/** A process's V8 collections by kind over a window (the `gc-take` call of a Passerelle child, child.ts). */
export type GcTally = Record<"scavenge" | "major" | "incremental" | "weak", GcKindTally>;

const KINDS = ["scavenge", "major", "incremental", "weak"] as const;

export function emptyGcTally(): GcTally {
  const zero = (): GcKindTally => ({ count: 0, ms: 0, maxMs: 0 });
  return { scavenge: zero(), major: zero(), incremental: zero(), weak: zero() };
}

/** Adds `b` into `a`. */
export function addGcTally(a: GcTally, b: GcTally): GcTally {
  for (const k of KINDS) {
    a[k].count += b[k].count;
    a[k].ms += b[k].ms;
    a[k].maxMs = Math.max(a[k].maxMs, b[k].maxMs);
  }
  return a;
}

/**
 * Runs `body`, which wraps the phases to count in `around`: the collections `child` made during those phases only
 * (its window is taken before and after each). The child reports a collection once V8 has delivered its entry, a
 * task after the pause: one that ends a phase may count in the next phase's window, or in none.
 */
export async function gcDuring(
  child: ChildHandle<unknown>,
  body: (around: <T>(phase: () => Promise<T>) => Promise<T>) => Promise<void>,
): Promise<GcTally> {
  const total = emptyGcTally();
  await body(async (phase) => {
    await child.call("gc-take");
    try {
      return await phase();
    } finally {
      addGcTally(total, await child.call<GcTally>("gc-take"));
    }
  });
  return total;
}

/** `2 major (11.3 ms, longest 6.1), 1 incremental-marking finalization (4.2 ms, longest 4.2), 18 scavenges (41.0 ms, longest 4.6)`. */
export function gcLine(t: GcTally): string {
  const part = (k: GcKindTally, one: string, many: string) =>
    `${k.count} ${k.count === 1 ? one : many}${k.count > 0 ? ` (${fx(k.ms, 1)} ms, longest ${fx(k.maxMs, 1)})` : ""}`;
  return [
    part(t.major, "major", "major"),
    part(t.incremental, "incremental-marking finalization", "incremental-marking finalizations"),
    part(t.scavenge, "scavenge", "scavenges"),
  ].join(", ");
}
