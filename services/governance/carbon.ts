// Energy and usage emissions of one chat completion, after the EcoLogits LLM inference methodology
// (mlco2/ecologits, ex genai-impact/ecologits, releases 0.9–0.10: ML.ENERGY benchmark, vLLM on H100, batch 64).
// Only the usage phase (electricity) is estimated; embodied impacts are out of scope. docs/carbon.md states the
// formula, every constant and its source, and the limits of the estimate.
import { electricityMixFor } from "./electricity-mix.js";

/** A closed interval; `min <= max`. */
export interface Range {
  min: number;
  max: number;
}

/** An exact value, or bounds where the value is only known to lie between them. */
export type ValueOrRange = number | Range;

/** Bits per weight when sizing the GPUs that hold the model (16: unquantized, as in the ML.ENERGY runs). */
export const MODEL_QUANTIZATION_BITS = 16;
/** Memory overhead over the weights (KV cache, activations), from EleutherAI "Transformer Math 101". */
export const MODEL_MEMORY_OVERHEAD = 1.2;
/** Memory of one GPU in GB (NVIDIA H100 80GB). */
export const GPU_MEMORY_GB = 80;
/** Requests served concurrently by one model replica. */
export const BATCH_SIZE = 64;

// GPU energy per output token (Wh) = ALPHA × exp(BETA × batch) × activeParamsB + GAMMA.
/** Wh per output token per billion active parameters (before the batch factor). */
export const GPU_ENERGY_ALPHA = 1.1665273170451914e-6;
/** Exponent per concurrent request of the batch factor. */
export const GPU_ENERGY_BETA = -0.011205921025579175;
/** Wh per output token independent of the model size. */
export const GPU_ENERGY_GAMMA = 4.052928146734005e-5;

// Generation latency per output token (s) = ALPHA × activeParamsB + BETA × batch + GAMMA.
/** Seconds per output token per billion active parameters. */
export const LATENCY_ALPHA = 6.785088094353663e-4;
/** Seconds per output token per concurrent request. */
export const LATENCY_BETA = 3.119310311688259e-4;
/** Seconds per output token independent of the model size and batch. */
export const LATENCY_GAMMA = 1.9473717579473387e-2;

/** GPUs installed in one server (AWS p5.48xlarge reference). */
export const SERVER_GPUS = 8;
/** Power of one server without its GPUs, in kW. */
export const SERVER_POWER_KW = 1.2;

/**
 * Data-centre PUE used when the caller gives none: the span of the PUEs EcoLogits configures for its providers
 * (1.09 Google … 1.20 Microsoft; 1.20 was also its single default before 0.9).
 */
export const DEFAULT_PUE: Readonly<Range> = Object.freeze({ min: 1.09, max: 1.2 });

/** What one request contributes to the estimate. */
export interface CarbonInput {
  /** Parameters used per token, in billions (= total for a dense model, less for a mixture of experts). */
  activeParamsB: ValueOrRange;
  /** All parameters, in billions; sizes the GPUs that hold the model. */
  totalParamsB: ValueOrRange;
  /** Hosting zone, ISO 3166-1 alpha-3 (`FRA`, `USA`, `WOR`…). */
  zone: string;
  /** Generated tokens. */
  completionTokens: number;
  /** Prompt tokens. Accepted for the record, not used: EcoLogits does not model pre-fill (mlco2/ecologits#183). */
  promptTokens?: number;
  /** Measured request latency in seconds; caps the modelled generation latency. Unknown: the model alone. */
  latencySeconds?: number;
  /** Data-centre Power Usage Effectiveness; default {@link DEFAULT_PUE}. */
  pue?: ValueOrRange;
}

/** Energy and usage emissions of one request, as bounds. */
export interface CarbonEstimate {
  /** Electricity drawn from the grid (IT × PUE), kWh. */
  kWh: Range;
  /** Usage-phase emissions (kWh × zone intensity), kgCO2eq. */
  kgCO2eq: Range;
  /** The zone whose electricity mix was used. */
  zoneUsed: string;
  /** True when `zone` was unknown and the world average (`WOR`) was used instead. */
  zoneFallback: boolean;
}

/** One point of the estimate: exact parameters and PUE. */
interface Point {
  activeParamsB: number;
  totalParamsB: number;
  pue: number;
}

function toRange(value: ValueOrRange): Range {
  if (typeof value === "number") return { min: value, max: value };
  return { min: Math.min(value.min, value.max), max: Math.max(value.min, value.max) };
}

function assertCount(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
}

/** Energy one GPU spends per generated token at {@link BATCH_SIZE}, in kWh. */
export function gpuEnergyPerTokenKWh(activeParamsB: number): number {
  const wh = GPU_ENERGY_ALPHA * Math.exp(GPU_ENERGY_BETA * BATCH_SIZE) * activeParamsB + GPU_ENERGY_GAMMA;
  return wh / 1000;
}

/** Generation latency in seconds: the modelled one, capped by the measured request latency when known. */
export function generationLatencySeconds(activeParamsB: number, completionTokens: number, measured?: number): number {
  const perToken = LATENCY_ALPHA * activeParamsB + LATENCY_BETA * BATCH_SIZE + LATENCY_GAMMA;
  return Math.min(completionTokens * perToken, measured ?? Number.POSITIVE_INFINITY);
}

/** GPUs needed to hold the model's weights, rounded up to a power of two (1, 2, 4, 8, 16…). */
export function requiredGpus(totalParamsB: number): number {
  const memoryGB = (MODEL_MEMORY_OVERHEAD * totalParamsB * MODEL_QUANTIZATION_BITS) / 8;
  const gpus = Math.max(1, Math.ceil(memoryGB / GPU_MEMORY_GB));
  return 2 ** Math.ceil(Math.log2(gpus));
}

/** Share of the server (without GPUs) used by the request, in kWh: its GPUs' share, split across the batch. */
export function serverEnergyKWh(latencySeconds: number, gpus: number): number {
  return (latencySeconds / 3600) * SERVER_POWER_KW * (gpus / SERVER_GPUS) * (1 / BATCH_SIZE);
}

function requestEnergyKWh(p: Point, completionTokens: number, latencySeconds?: number): number {
  const gpus = requiredGpus(p.totalParamsB);
  const latency = generationLatencySeconds(p.activeParamsB, completionTokens, latencySeconds);
  const it = serverEnergyKWh(latency, gpus) + gpus * completionTokens * gpuEnergyPerTokenKWh(p.activeParamsB);
  return p.pue * it;
}

/**
 * Estimates the electricity and usage emissions of one request as `[min, max]` bounds. Energy grows with every
 * input, so the bounds are the estimate at the lower and at the upper ends of the parameter and PUE ranges.
 * Returns `null` when the model size is unknown (parameters of 0, the registry's "not set").
 * @throws RangeError when token counts or the latency are negative or not finite.
 */
export function estimateCarbon(input: CarbonInput): CarbonEstimate | null {
  assertCount("completionTokens", input.completionTokens);
  if (input.latencySeconds !== undefined) assertCount("latencySeconds", input.latencySeconds);
  const active = toRange(input.activeParamsB);
  const total = toRange(input.totalParamsB);
  const pue = toRange(input.pue ?? DEFAULT_PUE);
  if (!(active.min > 0 && total.min > 0)) return null;

  const low = { activeParamsB: active.min, totalParamsB: total.min, pue: pue.min };
  const high = { activeParamsB: active.max, totalParamsB: total.max, pue: pue.max };
  const kWh = {
    min: requestEnergyKWh(low, input.completionTokens, input.latencySeconds),
    max: requestEnergyKWh(high, input.completionTokens, input.latencySeconds),
  };
  const mix = electricityMixFor(input.zone);
  return {
    kWh,
    kgCO2eq: { min: kWh.min * mix.kgCO2eqPerKWh, max: kWh.max * mix.kgCO2eqPerKWh },
    zoneUsed: mix.zone,
    zoneFallback: mix.fallback,
  };
}
