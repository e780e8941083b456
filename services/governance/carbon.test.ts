import { describe, expect, it } from "vitest";
import {
  DEFAULT_PUE,
  estimateCarbon,
  generationLatencySeconds,
  gpuEnergyPerTokenKWh,
  requiredGpus,
  serverEnergyKWh,
} from "./carbon.js";
import { ELECTRICITY_MIX_KGCO2EQ_PER_KWH, electricityMixFor } from "./electricity-mix.js";

// Expected values are worked out by hand from the formula in docs/carbon.md (B = 64 requests per batch):
//   batch factor     exp(-0.011205921025579175 × 64) = exp(-0.71717894563706) = 0.48812734923
//   GPU Wh/token     1.1665273170451914e-6 × 0.48812734923 × P_active + 4.052928146734005e-5
//   latency s/token  6.785088094353663e-4 × P_active + 3.119310311688259e-4 × 64 + 1.9473717579473387e-2
//   GPUs             2^ceil(log2(ceil(1.2 × P_total × 16 / 8 / 80)))
//   server kWh       ΔT / 3600 × 1.2 kW × GPUs / 8 / 64
//   kWh              PUE × (server + GPUs × tokens × GPU Wh/token / 1000), PUE in [1.09, 1.20] by default

/** Relative closeness, for values spanning many orders of magnitude. */
function expectClose(actual: number, expected: number, relative = 1e-8): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.abs(expected) * relative);
}

describe("building blocks", () => {
  it("GPU energy per token is linear in active parameters", () => {
    // 7.6B: 1.1665273170451914e-6 × 0.48812734923 × 7.6 = 4.3275533e-6; + 4.052928147e-5 = 4.4856827009e-5 Wh
    expectClose(gpuEnergyPerTokenKWh(7.6), 4.4856827009e-8, 1e-9);
    // 12.9B: 1.1665273170451914e-6 × 0.48812734923 × 12.9 = 7.3454391e-6; + 4.052928147e-5 = 4.7874720611e-5 Wh
    expectClose(gpuEnergyPerTokenKWh(12.9), 4.7874720611e-8, 1e-9);
  });

  it("sizes the GPUs from total parameters at 16 bits, rounded up to a power of two", () => {
    expect(requiredGpus(7.6)).toBe(1); // 1.2 × 7.6 × 2 = 18.24 GB → ceil(0.228) = 1
    expect(requiredGpus(46.7)).toBe(2); // 1.2 × 46.7 × 2 = 112.08 GB → ceil(1.401) = 2
    expect(requiredGpus(70)).toBe(4); // 168 GB → ceil(2.1) = 3 → 4
    expect(requiredGpus(405)).toBe(16); // 972 GB → ceil(12.15) = 13 → 16
    expect(requiredGpus(0.1)).toBe(1); // never fewer than one GPU
  });

  it("models the generation latency, capped by the measured latency", () => {
    // 6.785088094e-4 × 7.6 + 3.119310311688e-4 × 64 + 1.947371758e-2 = 0.0445939705 s/token; × 100 tokens
    expectClose(generationLatencySeconds(7.6, 100), 4.4593970526, 1e-9);
    expect(generationLatencySeconds(7.6, 100, 2)).toBe(2);
    expectClose(generationLatencySeconds(7.6, 100, 60), 4.4593970526, 1e-9);
  });

  it("charges the request its GPUs' share of the server, split across the batch", () => {
    // 4.4593970526 / 3600 × 1.2 × 1/8 × 1/64 = 2.9032532895e-6 kWh
    expectClose(serverEnergyKWh(4.4593970526, 1), 2.9032532895e-6, 1e-9);
  });
});

describe("estimateCarbon", () => {
  it("7.6B dense model in FRA, 100 output tokens, latency unknown", () => {
    // GPUs = 1; ΔT = 4.4593970526 s (model); server = 2.9032532895e-6 kWh
    // GPU = 1 × 100 × 4.4856827009e-5 / 1000 = 4.4856827009e-6 kWh; IT = 7.3889359904e-6 kWh
    // kWh = 1.09 × IT = 8.0539402295e-6 … 1.20 × IT = 8.8667231884e-6
    // kgCO2eq = kWh × 0.04418 = 3.5582307934e-7 … 3.9173183047e-7
    const estimate = estimateCarbon({ activeParamsB: 7.6, totalParamsB: 7.6, zone: "FRA", completionTokens: 100 });
    expect(estimate).not.toBeNull();
    if (!estimate) return;
    expectClose(estimate.kWh.min, 8.0539402295e-6, 1e-9);
    expectClose(estimate.kWh.max, 8.8667231884e-6, 1e-9);
    expectClose(estimate.kgCO2eq.min, 3.5582307934e-7, 1e-9);
    expectClose(estimate.kgCO2eq.max, 3.9173183047e-7, 1e-9);
    expect(estimate.zoneUsed).toBe("FRA");
    expect(estimate.zoneFallback).toBe(false);
  });

  it("MoE with 46.7B total / 12.9B active in USA, 100 output tokens, measured latency 2 s", () => {
    // GPUs = 2 (112.08 GB); modelled ΔT = 100 × 0.0481900672 = 4.819 s > 2 s measured → ΔT = 2 s
    // server = 2 / 3600 × 1.2 × 2/8 × 1/64 = 2.6041666667e-6 kWh
    // GPU = 2 × 100 × 4.7874720611e-5 / 1000 = 9.5749441221e-6 kWh; IT = 1.2179110789e-5 kWh
    // kWh = 1.09 × IT = 1.3275230760e-5 … 1.20 × IT = 1.4614932947e-5
    // kgCO2eq = kWh × 0.38355 = 5.0917147579e-6 … 5.6055575316e-6
    const estimate = estimateCarbon({
      activeParamsB: 12.9,
      totalParamsB: 46.7,
      zone: "USA",
      completionTokens: 100,
      promptTokens: 2000,
      latencySeconds: 2,
    });
    if (!estimate) throw new Error("expected an estimate");
    expectClose(estimate.kWh.min, 1.327523076e-5, 1e-9);
    expectClose(estimate.kWh.max, 1.4614932947e-5, 1e-9);
    expectClose(estimate.kgCO2eq.min, 5.0917147579e-6, 1e-9);
    expectClose(estimate.kgCO2eq.max, 5.6055575316e-6, 1e-9);
    expect(estimate.zoneUsed).toBe("USA");
  });

  it("is zero without output tokens (pre-fill is not modelled)", () => {
    const estimate = estimateCarbon({
      activeParamsB: 7.6,
      totalParamsB: 7.6,
      zone: "FRA",
      completionTokens: 0,
      promptTokens: 5000,
      latencySeconds: 1.5,
    });
    expect(estimate).toEqual({
      kWh: { min: 0, max: 0 },
      kgCO2eq: { min: 0, max: 0 },
      zoneUsed: "FRA",
      zoneFallback: false,
    });
  });

  it("falls back to the world average for an unknown zone, and says so", () => {
    const estimate = estimateCarbon({ activeParamsB: 7.6, totalParamsB: 7.6, zone: "XYZ", completionTokens: 100 });
    if (!estimate) throw new Error("expected an estimate");
    expect(estimate.zoneUsed).toBe("WOR");
    expect(estimate.zoneFallback).toBe(true);
    // same energy as in FRA; 8.0539402295e-6 × 0.47301 = 3.8095942680e-6
    expectClose(estimate.kWh.min, 8.0539402295e-6, 1e-9);
    expectClose(estimate.kgCO2eq.min, 3.809594268e-6, 1e-9);
  });

  it("reads zones case-insensitively and knows the world average as a zone", () => {
    expect(electricityMixFor(" fra ")).toEqual({ zone: "FRA", kgCO2eqPerKWh: 0.04418, fallback: false });
    expect(electricityMixFor("WOR")).toEqual({ zone: "WOR", kgCO2eqPerKWh: 0.47301, fallback: false });
    expect(electricityMixFor("toString").fallback).toBe(true);
  });

  it("has every EU member state and the zones asked for", () => {
    const eu =
      "AUT BEL BGR HRV CYP CZE DNK EST FIN FRA DEU GRC HUN IRL ITA LVA LTU LUX MLT NLD POL PRT ROU SVK SVN ESP SWE";
    for (const zone of [...eu.split(" "), "USA", "GBR", "CHE", "CAN", "CHN", "IND", "JPN", "WOR"]) {
      const intensity = ELECTRICITY_MIX_KGCO2EQ_PER_KWH[zone];
      expect(intensity, zone).toBeGreaterThan(0);
      expect(intensity, zone).toBeLessThan(1);
    }
  });

  it("keeps min <= max", () => {
    for (const [active, total] of [
      [0.5, 0.5],
      [7.6, 7.6],
      [12.9, 46.7],
      [70, 70],
      [37, 671],
    ] as const) {
      for (const completionTokens of [0, 1, 100, 4000]) {
        for (const latencySeconds of [undefined, 0, 0.5, 30]) {
          const e = estimateCarbon({
            activeParamsB: active,
            totalParamsB: total,
            zone: "DEU",
            completionTokens,
            latencySeconds,
          });
          if (!e) throw new Error("expected an estimate");
          expect(e.kWh.min).toBeGreaterThanOrEqual(0);
          expect(e.kWh.min).toBeLessThanOrEqual(e.kWh.max);
          expect(e.kgCO2eq.min).toBeLessThanOrEqual(e.kgCO2eq.max);
        }
      }
    }
  });

  it("scales linearly with output tokens while the latency is modelled", () => {
    const at = (completionTokens: number) =>
      estimateCarbon({ activeParamsB: 7.6, totalParamsB: 7.6, zone: "FRA", completionTokens })?.kWh.max ?? Number.NaN;
    expectClose(at(200), 2 * at(100), 1e-12);
    expectClose(at(1000), 10 * at(100), 1e-12);
  });

  it("stops growing the server share once the measured latency caps it", () => {
    const at = (completionTokens: number) =>
      estimateCarbon({ activeParamsB: 7.6, totalParamsB: 7.6, zone: "FRA", completionTokens, latencySeconds: 1 })?.kWh
        .max ?? Number.NaN;
    // ΔT = 1 s for both, so only the GPU part doubles (the PUE cancels out in the ratio):
    // server = 1 / 3600 × 1.2 / 8 / 64 = 6.5104166667e-7; GPU(100) = 4.4856827009e-6; GPU(200) = 8.9713654018e-6
    // ratio = (6.5104166667e-7 + 8.9713654018e-6) / (6.5104166667e-7 + 4.4856827009e-6) = 1.8732574263
    expectClose(at(200) / at(100), 1.8732574263, 1e-9);
  });

  it("gives a single value for an exact PUE", () => {
    const e = estimateCarbon({ activeParamsB: 7.6, totalParamsB: 7.6, zone: "FRA", completionTokens: 100, pue: 1.2 });
    expect(e?.kWh.min).toBe(e?.kWh.max);
    expectClose(e?.kWh.min ?? 0, 8.8667231884e-6, 1e-9);
  });

  it("spans parameter ranges for undisclosed architectures", () => {
    const base = { zone: "SWE", completionTokens: 300, latencySeconds: 20, pue: DEFAULT_PUE } as const;
    const range = estimateCarbon({ ...base, activeParamsB: { min: 10, max: 20 }, totalParamsB: { min: 40, max: 100 } });
    const low = estimateCarbon({ ...base, activeParamsB: 10, totalParamsB: 40, pue: DEFAULT_PUE.min });
    const high = estimateCarbon({ ...base, activeParamsB: 20, totalParamsB: 100, pue: DEFAULT_PUE.max });
    expect(range?.kWh).toEqual({ min: low?.kWh.min, max: high?.kWh.max });
    // 40B → 96 GB → 2 GPUs; 100B → 240 GB → 3 → 4 GPUs: the upper bound is more than twice the lower one
    expect((range?.kWh.max ?? 0) / (range?.kWh.min ?? 1)).toBeGreaterThan(2);
  });

  it("agrees with a published EcoLogits 0.9.1 figure: ~85 Wh per million output tokens for an 8B model", () => {
    // betagouv/ComparIA#253 (ecologits 0.9.1, PUE 1.15): "8B: 3768 Wh → 85 Wh per million tokens".
    // Per token: GPU 1.1665e-6 × 0.488127 × 8 + 4.05293e-5 = 4.50853e-5 Wh; latency 0.0448654 s →
    // server 0.0448654 / 3600 × 1.2 / 8 / 64 × 1000 = 2.92092e-5 Wh; × 1.15 = 8.5438e-5 Wh → 85.4 Wh per 1e6 tokens
    const e = estimateCarbon({ activeParamsB: 8, totalParamsB: 8, zone: "WOR", completionTokens: 1e6, pue: 1.15 });
    expect((e?.kWh.max ?? 0) * 1000).toBeCloseTo(85.4, 1);
  });

  it("returns null when the model size is unknown (registry default of 0)", () => {
    expect(estimateCarbon({ activeParamsB: 0, totalParamsB: 0, zone: "WOR", completionTokens: 10 })).toBeNull();
    expect(estimateCarbon({ activeParamsB: 0, totalParamsB: 7, zone: "WOR", completionTokens: 10 })).toBeNull();
  });

  it("rejects negative or non-finite counts", () => {
    const ok = { activeParamsB: 7.6, totalParamsB: 7.6, zone: "FRA" };
    expect(() => estimateCarbon({ ...ok, completionTokens: -1 })).toThrow(RangeError);
    expect(() => estimateCarbon({ ...ok, completionTokens: Number.NaN })).toThrow(RangeError);
    expect(() => estimateCarbon({ ...ok, completionTokens: 1, latencySeconds: -0.1 })).toThrow(RangeError);
    expect(() => estimateCarbon({ ...ok, completionTokens: 1, latencySeconds: Number.POSITIVE_INFINITY })).toThrow(
      RangeError,
    );
  });
});
