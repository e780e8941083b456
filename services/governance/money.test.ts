import { describe, expect, it } from "vitest";
import { costNanos, formatUnits, nanosToUnits, parseUnits, unitsToNanos } from "./money.js";

describe("money in nano-units", () => {
  it("parses and formats exact decimals", () => {
    expect(parseUnits("12.5")).toBe(12_500_000_000n);
    expect(parseUnits("0.000000001")).toBe(1n);
    expect(parseUnits("-3")).toBe(-3_000_000_000n);
    expect(() => parseUnits("0.0000000001")).toThrow(RangeError);
    expect(() => parseUnits("1e3")).toThrow(RangeError);
    expect(formatUnits(12_500_000_000n)).toBe("12.5");
    expect(formatUnits(1n)).toBe("0.000000001");
    expect(formatUnits(-1_000_000_001n)).toBe("-1.000000001");
    expect(formatUnits(0n)).toBe("0");
    expect(formatUnits(9_223_372_036_854_775_807n)).toBe("9223372036.854775807");
  });

  it("converts numbers through their decimal form, not their binary one", () => {
    expect(unitsToNanos(0.1)).toBe(100_000_000n);
    expect(unitsToNanos(0.3)).toBe(300_000_000n);
    expect(unitsToNanos(2.675)).toBe(2_675_000_000n);
    expect(nanosToUnits(2_675_000_000n)).toBe(2.675);
    expect(() => unitsToNanos(Number.NaN)).toThrow(RangeError);
  });

  it("costs tokens at the prices per 1M tokens, rounded up once per request", () => {
    const prices = { costPromptPerMillion: 0.15, costCompletionPerMillion: 0.6 };
    // 1,000 × 0.15 / 1M + 500 × 0.6 / 1M = 0.00015 + 0.0003 = 0.00045 units = 450,000 nanos.
    expect(costNanos({ promptTokens: 1000, completionTokens: 500 }, prices)).toBe(450_000n);
    expect(costNanos({ promptTokens: 1, completionTokens: 0 }, prices)).toBe(150n);
    // 1 token at 0.0000015 per 1M = 0.0015 nano-units → rounded up to 1, once for the whole request.
    const tiny = { costPromptPerMillion: 0.0000015, costCompletionPerMillion: 0.0000015 };
    expect(costNanos({ promptTokens: 1, completionTokens: 0 }, tiny)).toBe(1n);
    expect(costNanos({ promptTokens: 1000, completionTokens: 1000 }, tiny)).toBe(3n);
    expect(costNanos({ promptTokens: 0, completionTokens: 0 }, prices)).toBe(0n);
    expect(
      costNanos({ promptTokens: 7, completionTokens: 3 }, { costPromptPerMillion: 0, costCompletionPerMillion: 0 }),
    ).toBe(0n);
  });

  it("is monotonic, so a worst-case reservation bounds the actual cost", () => {
    const prices = { costPromptPerMillion: 0.37, costCompletionPerMillion: 1.13 };
    const worst = costNanos({ promptTokens: 900, completionTokens: 256 }, prices);
    for (let p = 0; p <= 900; p += 37) {
      for (let c = 0; c <= 256; c += 17) {
        expect(costNanos({ promptTokens: p, completionTokens: c }, prices)).toBeLessThanOrEqual(worst);
      }
    }
  });
});
