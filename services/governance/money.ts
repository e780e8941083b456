/**
 * Money is counted in integer nano-units (10⁻⁹ of the currency unit) held in `bigint`, in PostgreSQL as `bigint`:
 * sums, reservations and settlements are exact, and a bigint nano-count reaches 9.2 × 10⁹ currency units. The
 * APIs show currency units (a number, or an exact decimal string in exports); prices per 1M tokens are doubles in
 * the model registry and become nano-units once, here.
 */

export const NANOS_PER_UNIT = 1_000_000_000n;
const TOKENS_PER_PRICE = 1_000_000n;
const DECIMAL = /^(-)?(\d+)(?:\.(\d{1,9}))?$/;

/** An exact decimal string of currency units (`"12.5"`, `"-0.000000001"`) in nano-units; throws on more than 9 decimals. */
export function parseUnits(text: string): bigint {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new RangeError(`not a decimal amount with at most 9 decimals: '${text}'`);
  const nanos = BigInt(m[2] ?? "0") * NANOS_PER_UNIT + BigInt((m[3] ?? "").padEnd(9, "0"));
  return m[1] ? -nanos : nanos;
}

/** A number of currency units in nano-units, rounded to the nearest nano-unit (through its decimal form, not binary). */
export function unitsToNanos(units: number): bigint {
  if (!Number.isFinite(units)) throw new RangeError(`not a finite amount: ${units}`);
  return parseUnits(units.toFixed(9));
}

/** Nano-units as a number of currency units (display; exact below 2⁵³ nano-units, ≈ 9 million units). */
export function nanosToUnits(nanos: bigint): number {
  return Number(nanos) / 1e9;
}

/** Nano-units as an exact decimal string of currency units, without trailing zeros (`"0.0012"`, `"3"`). */
export function formatUnits(nanos: bigint): string {
  const sign = nanos < 0n ? "-" : "";
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % NANOS_PER_UNIT).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}${abs / NANOS_PER_UNIT}${fraction ? `.${fraction}` : ""}`;
}

/** A model's prices, in currency units per 1M tokens (as the model registry stores them). */
export interface TokenPrices {
  costPromptPerMillion: number;
  costCompletionPerMillion: number;
}

/**
 * The cost of a request in nano-units: tokens × price per 1M tokens, rounded up to the next nano-unit once for the
 * whole request. Monotonic in both token counts, so the cost of the worst case (estimated prompt + max completion
 * tokens) bounds the cost of what actually happens, which is what a budget reservation relies on.
 */
export function costNanos(tokens: { promptTokens: number; completionTokens: number }, prices: TokenPrices): bigint {
  const nanos = pricesInNanos(prices);
  const prompt = BigInt(tokens.promptTokens) * nanos.prompt;
  const completion = BigInt(tokens.completionTokens) * nanos.completion;
  const total = prompt + completion;
  if (total < 0n) throw new RangeError("negative token counts or prices");
  return (total + TOKENS_PER_PRICE - 1n) / TOKENS_PER_PRICE;
}

// The registry hands out one frozen object per model version: its prices are converted once, not per request.
const converted = new WeakMap<TokenPrices, { prompt: bigint; completion: bigint }>();

function pricesInNanos(prices: TokenPrices): { prompt: bigint; completion: bigint } {
  let n = converted.get(prices);
  if (!n) {
    n = {
      prompt: unitsToNanos(prices.costPromptPerMillion),
      completion: unitsToNanos(prices.costCompletionPerMillion),
    };
    if (Object.isFrozen(prices)) converted.set(prices, n);
  }
  return n;
}
