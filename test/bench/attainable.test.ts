import { describe, expect, it } from "vitest";
import { attainability, targetFigures, verdictOf } from "./attainable.js";
import type { Summary } from "./common.js";
import type { FloorPaths, FloorStreams } from "./floors.js";

const summary = (p50: number, p99: number): Summary => ({ n: 100, p50, p90: p50, p99, mean: p50, max: p99 });
const path = (p50: number, p99: number) => ({
  c1: summary(p50, p99),
  c1CpuMsPerRequest: 0,
  c32Rps: 0,
  c32CpuMsPerRequest: 0,
});
const stream = (ttfbP50: number, bunchedPct: number) => ({ ttfb: summary(ttfbP50, ttfbP50), fidelity: { bunchedPct } });

describe("attainability", () => {
  it("tells a met target, one the floor meets, and one the floor alone misses", () => {
    const floor = (value: number) => ({ name: "connect floor", value });
    expect(verdictOf({ target: 1, passerelle: 1, floor: floor(0.5) })).toBe("met");
    expect(verdictOf({ target: 1, passerelle: 1.2, floor: floor(1) })).toBe("missed");
    expect(verdictOf({ target: 1, passerelle: 1.2, floor: floor(1.01) })).toBe("out of reach here");
    // A path doing less work than the floor that misses the target puts it out of reach too.
    const direct = { name: "direct", value: 2.8 };
    expect(verdictOf({ target: 2, passerelle: 4, floor: floor(1.9), others: [direct] })).toBe("out of reach here");
    expect(verdictOf({ target: 2, passerelle: 4, floor: floor(1.9), others: [{ ...direct, value: 1 }] })).toBe(
      "missed",
    );
    expect(() => verdictOf({ target: 1, passerelle: Number.NaN, floor: floor(1) })).toThrow(/missing/);
    expect(() =>
      verdictOf({ target: 1, passerelle: 2, floor: floor(1), others: [{ ...direct, value: Number.NaN }] }),
    ).toThrow(/missing/);
  });

  it("measures every figure over direct against the Connect floor, beside the ceiling", () => {
    const paths: FloorPaths = {
      direct: path(0.1, 0.5),
      ceiling: path(0.35, 1.1),
      "fastify floor": path(0.42, 1.2),
      "connect floor": path(0.55, 1.8),
      passerelle: path(0.8, 2.9),
    };
    const streams = {
      c1: {
        direct: stream(0.9, 0),
        ceiling: stream(1.7, 0),
        "connect floor": stream(1.5, 0),
        passerelle: stream(2.6, 0),
      },
      c64: {
        direct: stream(10, 0.5),
        ceiling: stream(15, 1.5),
        "connect floor": stream(12, 2.5),
        passerelle: stream(27, 4.2),
      },
    } as unknown as FloorStreams;
    const rows = attainability(targetFigures({ paths, streams }, { addedP99GovernedMs: 3.9 })).rows;
    expect(rows.map((r) => [r.figure, r.passerelle, r.floor, r.verdict])).toEqual([
      ["added latency p50, c=1 (ms)", 0.7, "connect floor 0.45", "out of reach here"],
      ["added latency p99, c=1 (ms)", 2.4, "connect floor 1.3", "out of reach here"],
      ["governed: added latency p99, c=1 (ms; issue 5)", 3.9, "connect floor 1.3", "out of reach here"],
      ["added TTFB p50, 1 stream (ms)", 1.7, "connect floor 0.6", "missed"],
      ["added TTFB p50, 64 streams (ms)", 17, "connect floor 2", "out of reach here"],
      ["bunched frames, 64 streams (%)", 4.2, "connect floor 2.5", "out of reach here"],
    ]);
    expect(rows.map((r) => r.others)).toEqual([
      "ceiling 0.25, fastify floor 0.32",
      "ceiling 0.6, fastify floor 0.7",
      "—",
      "ceiling 0.8",
      "ceiling 5",
      "ceiling 1.5, direct 0.5",
    ]);
    // Without the governed section's figure, its row is left out.
    expect(targetFigures({ paths, streams }).map((f) => f.figure)).not.toContain(
      "governed: added latency p99, c=1 (ms; issue 5)",
    );
  });
});
