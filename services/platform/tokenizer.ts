import { createRequire } from "node:module";

/**
 * Token counting for estimates (limits and budgets reserve before the upstream answers) and for upstreams that send
 * no usage. gpt-tokenizer's cl100k_base encoding: close to the tokenizers of today's open-weight models (Llama 3's
 * is derived from it) and a third lighter than o200k (≈36 MB of tables instead of ≈57 MB). Loaded on first use, so
 * that a deployment whose requests never need a count (no limits, no prices, upstreams with usage) never carries it;
 * the first count pays the load once (a few hundred ms).
 */
let count: ((text: string) => number) | undefined;

export function countTokens(text: string): number {
  count ??= (createRequire(import.meta.url)("gpt-tokenizer/encoding/cl100k_base") as { countTokens(t: string): number })
    .countTokens;
  return count(text);
}
