import { fx } from "./common.js";
import type { FloorPaths, FloorStreams, StreamPathName } from "./floors.js";
import type { Section } from "./inference.js";

/**
 * Which latency targets of issues 4 and 5 the project's required shape can meet on the machine the bench ran on.
 *
 * A target below what a stripped-down server adds on this machine cannot be met by Passerelle here, however lean its
 * own code. That server is the Connect floor (floors.ts: Fastify, the bridge's protobuf mapping, an in-process Connect
 * call and our upstream client, unary and streaming, without any feature): the shape the project must have. Paths
 * that do part of its work (direct, the bare undici proxy, the Fastify floor) are shown beside it and count as well. Every figure comes from the floors
 * section of one run, where the paths are interleaved (the governed one from the inference section of the same
 * run); each is added time over direct, except bunched frames.
 */

export interface Bound {
  /** e.g. "connect floor". */
  name: string;
  value: number;
}

export interface Figure {
  figure: string;
  /** The target: met when Passerelle's value is ≤ it. */
  target: number;
  passerelle: number;
  /** The least a server of the required kind showed in the same run. */
  floor: Bound;
  /**
   * Paths that do less work than the floor (direct, the ceiling, the Fastify floor): one that misses the target shows
   * it out of reach as surely as the floor does. Bunched frames need it: the client and the simulator alone bunch
   * some frames, and on a busy 2-vCPU machine the direct path may miss the target by itself.
   */
  others?: Bound[];
  digits: number;
}

export type Verdict = "met" | "missed" | "out of reach here";

export function verdictOf(f: Pick<Figure, "target" | "passerelle" | "floor" | "others">): Verdict {
  const bounds = [f.floor, ...(f.others ?? [])];
  if (!Number.isFinite(f.passerelle) || bounds.some((b) => !Number.isFinite(b.value))) {
    throw new Error("a figure is missing");
  }
  if (f.passerelle <= f.target) return "met";
  return bounds.some((b) => b.value > f.target) ? "out of reach here" : "missed";
}

export function attainability(figures: readonly Figure[]): Section {
  return {
    title: "Targets against this machine: what the required shape's floor allows here (same run)",
    note:
      "out of reach here = the floor, or a path doing less work than it (others), misses the target on this machine, " +
      "so no code of Passerelle's can meet it here; missed = they all meet it and the gap is Passerelle's own. Figures from the floors section, where every " +
      "path is interleaved (Passerelle's too); the governed one from the governed section.",
    rows: figures.map((f) => {
      const v = verdictOf(f);
      const show = (b: Bound) => `${b.name} ${fx(b.value, f.digits)}`;
      return {
        figure: f.figure,
        target: `≤ ${f.target}`,
        passerelle: fx(f.passerelle, f.digits),
        floor: show(f.floor),
        others: (f.others ?? []).map(show).join(", ") || "—",
        verdict: v,
      };
    }),
  };
}

/** The figures of one bench run that have a latency target, each beside its floor (floors.ts, same run). */
export function targetFigures(
  floors: { paths: FloorPaths; streams: FloorStreams },
  governed?: { addedP99GovernedMs: number },
): Figure[] {
  const d = floors.paths.direct.c1;
  const added = (name: keyof FloorPaths, q: "p50" | "p99"): Bound => ({
    name,
    value: floors.paths[name].c1[q] - d[q],
  });
  const c1 = (q: "p50" | "p99", target: number): Figure => ({
    figure: `added latency ${q}, c=1 (ms)`,
    target,
    passerelle: added("passerelle", q).value,
    floor: added("connect floor", q),
    others: [added("ceiling", q), added("fastify floor", q)],
    digits: 3,
  });
  const out = [c1("p50", 0.3), c1("p99", 1)];
  if (governed) {
    out.push({
      figure: "governed: added latency p99, c=1 (ms; issue 5)",
      target: 1,
      passerelle: governed.addedP99GovernedMs,
      floor: added("connect floor", "p99"),
      digits: 3,
    });
  }
  const ttfb = (c: "c1" | "c64", figure: string): Figure => {
    const s = floors.streams[c];
    const at = (p: StreamPathName): Bound => ({ name: p, value: s[p].ttfb.p50 - s.direct.ttfb.p50 });
    return {
      figure,
      target: 1,
      passerelle: at("passerelle").value,
      floor: at("connect floor"),
      others: [at("ceiling")],
      digits: 2,
    };
  };
  const s64 = floors.streams.c64;
  const bunched = (p: StreamPathName): Bound => ({ name: p, value: s64[p].fidelity.bunchedPct });
  out.push(ttfb("c1", "added TTFB p50, 1 stream (ms)"), ttfb("c64", "added TTFB p50, 64 streams (ms)"), {
    figure: "bunched frames, 64 streams (%)",
    target: 2,
    passerelle: bunched("passerelle").value,
    floor: bunched("connect floor"),
    others: [bunched("ceiling"), bunched("direct")],
    digits: 2,
  });
  return out;
}
