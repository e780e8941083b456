import { randomBytes } from "node:crypto";

/** Deterministic pseudo-randomness and a rough tokenizer: same input, same output, on every machine. */

export type Rng = () => number;

/** Four 32-bit lanes of multiplicative string hashing, avalanched: a fast seed (no crypto needed here). */
function hash128(s: string): [number, number, number, number] {
  let h1 = 0x6a09e667;
  let h2 = 0xbb67ae85;
  let h3 = 0x3c6ef372;
  let h4 = 0xa54ff53a;
  for (let i = 0; i < s.length; i++) {
    const k = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ k, 0x01000193);
    h2 = Math.imul(h2 ^ k, 0x5bd1e995);
    h3 = Math.imul(h3 ^ k, 0x85ebca6b);
    h4 = Math.imul(h4 ^ k, 0xc2b2ae35);
  }
  const mix = (h: number, m: number) => {
    let x = Math.imul(h ^ (h >>> 16), m);
    x = Math.imul(x ^ (x >>> 13), 0x27d4eb2f);
    return (x ^ (x >>> 16)) >>> 0;
  };
  return [mix(h1 ^ h4, 0x85ebca6b), mix(h2 ^ h1, 0xc2b2ae35), mix(h3 ^ h2, 0x9e3779b1), mix(h4 ^ h3, 0x7feb352d)];
}

/** sfc32 seeded from a 128-bit hash of `seed`: uniform in [0, 1), the same sequence for the same seed. */
export function rngFrom(seed: string): Rng {
  let [a, b, c, d] = hash128(seed);
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A standard normal draw (Box–Muller). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const idPrefix = randomBytes(8).toString("hex");
let idCounter = 0;

/** 32 hex digits, like vLLM's `random_uuid()`: a random per-process prefix and a counter (unique, and cheap). */
export function randomId(): string {
  idCounter = (idCounter + 1) % 0x20000000000000;
  return idPrefix + idCounter.toString(16).padStart(16, "0");
}

const WORDS = [
  "the",
  "model",
  "answer",
  "public",
  "service",
  "data",
  "open",
  "river",
  "stone",
  "light",
  "green",
  "city",
  "quiet",
  "north",
  "window",
  "paper",
  "signal",
  "bridge",
  "harbor",
  "garden",
  "winter",
  "summer",
  "number",
  "letter",
  "simple",
  "clear",
  "careful",
  "report",
  "council",
  "village",
  "market",
  "school",
  "library",
  "forest",
  "valley",
  "engine",
  "record",
  "measure",
  "balance",
  "network",
  "archive",
  "journey",
  "morning",
  "evening",
  "question",
  "reason",
  "method",
  "result",
  "policy",
  "citizen",
  "travel",
  "weather",
  "history",
  "science",
  "museum",
  "festival",
  "station",
  "channel",
  "pattern",
  "surface",
  "harvest",
  "lantern",
  "compass",
  "meadow",
] as const;

/** One word, as a token piece: the first without a leading space, later ones with one. */
export function wordPiece(rng: Rng, first: boolean): string {
  const w = WORDS[Math.floor(rng() * WORDS.length)] ?? "the";
  return first ? w : ` ${w}`;
}

/** Rough token count: one per punctuation mark, one per started 4 characters of a word. */
export function countTextTokens(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu)) n += Math.ceil(m[0].length / 4);
  return n;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Tokens of a message `content`: a string, or parts (text counted, each image or audio part a flat 85). */
export function countContentTokens(content: unknown): number {
  if (typeof content === "string") return countTextTokens(content);
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) {
    if (!isRecord(part)) continue;
    if (typeof part.text === "string") n += countTextTokens(part.text);
    else n += 85;
  }
  return n;
}

/**
 * Prompt tokens of a chat request, the way chat templates add up: 4 per message for the role markers, its content,
 * its name and tool calls, 3 to prime the reply, and the tool definitions as JSON.
 */
export function countChatPromptTokens(messages: readonly unknown[], tools?: unknown): number {
  let n = 3;
  for (const m of messages) {
    n += 4;
    if (!isRecord(m)) continue;
    n += countContentTokens(m.content);
    if (typeof m.name === "string") n += countTextTokens(m.name);
    if (m.tool_calls !== undefined) n += countTextTokens(JSON.stringify(m.tool_calls));
  }
  if (Array.isArray(tools) && tools.length > 0) n += countTextTokens(JSON.stringify(tools));
  return n;
}

/** A JSON value shaped by a JSON schema (types, enums, required and optional properties), drawn from `rng`. */
export function valueForSchema(schema: unknown, rng: Rng, depth = 0): unknown {
  if (!isRecord(schema) || depth > 4) return wordPiece(rng, true);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[Math.floor(rng() * schema.enum.length)];
  if ("const" in schema) return schema.const;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "integer":
      return Math.floor(rng() * 100);
    case "number":
      return Math.round(rng() * 10_000) / 100;
    case "boolean":
      return rng() < 0.5;
    case "array":
      return [valueForSchema(schema.items, rng, depth + 1)];
    case "object": {
      const out: Record<string, unknown> = {};
      const props = isRecord(schema.properties) ? schema.properties : {};
      for (const [k, s] of Object.entries(props)) out[k] = valueForSchema(s, rng, depth + 1);
      return out;
    }
    default:
      if (schema.properties !== undefined) return valueForSchema({ ...schema, type: "object" }, rng, depth);
      return wordPiece(rng, true);
  }
}

/** Splits `s` into pieces of about `size` characters (token-sized pieces of a tool call's JSON arguments). */
export function splitPieces(s: string, size = 6): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length > 0 ? out : [""];
}
