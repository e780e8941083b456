import { describe, expect, it } from "vitest";
import { loadSotu } from "./sotu.js";
import { SOTU_QUERIES } from "./sotu-queries.js";

/** Integrity of the judged queries against the corpus itself (no search involved). */

const speeches = loadSotu();
const byId = new Map(speeches.map((s) => [s.id, s]));

function words(text: string): string[] {
  return (
    text
      .toLowerCase()
      .replace(/[’‘]/g, "'")
      .match(/[a-z0-9]+(?:'[a-z]+)?/g) ?? []
  );
}

function ngrams(tokens: string[], n: number): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + n <= tokens.length; i++) out.add(tokens.slice(i, i + n).join(" "));
  return out;
}

function count(pattern: string, text: string): number {
  return text.match(new RegExp(pattern, "gi"))?.length ?? 0;
}

const normalize = (text: string) => text.replace(/\s+/g, " ").toLowerCase();

// Per-address work shared by the per-query checks below (computed once, on first use).
let normalizedTexts: string[] | undefined;
const sixWordRuns = new Map<string, Set<string>>();
function runsOf(id: string): Set<string> {
  let runs = sixWordRuns.get(id);
  if (!runs) {
    runs = ngrams(words(byId.get(id)?.text ?? ""), 6);
    sixWordRuns.set(id, runs);
  }
  return runs;
}

describe("loadSotu", () => {
  it("loads the 233 addresses from 1790 to 2021 with unique, stable ids", () => {
    expect(speeches).toHaveLength(233);
    expect(new Set(speeches.map((s) => s.id)).size).toBe(233);
    expect(speeches[0]?.id).toBe("1790-washington");
    expect(speeches.at(-1)?.id).toBe("2021-biden");
    expect(byId.get("1941-roosevelt")?.president).toBe("Franklin D Roosevelt");
    expect(byId.get("1837-van-buren")?.president).toBe("Martin Van Buren");
    expect(byId.get("1898-mckinley")?.party).toBe("Republican");
    for (const s of speeches) {
      expect(s.id).toMatch(/^\d{4}-[a-z]+(-[a-z]+)*$/);
      expect(s.id.startsWith(`${s.year}-`)).toBe(true);
      expect(s.text.length).toBeGreaterThan(1000);
    }
  });

  it("keeps both addresses of a year with two presidents apart", () => {
    expect(speeches.filter((s) => s.year === 1953).map((s) => s.id)).toEqual(["1953-eisenhower", "1953-truman"]);
    expect(speeches.filter((s) => s.year === 1961).map((s) => s.id)).toEqual(["1961-eisenhower", "1961-kennedy"]);
  });

  it("filters by year range, inclusive", () => {
    expect(loadSotu({ fromYear: 2019 }).map((s) => s.id)).toEqual(["2019-trump", "2020-trump", "2021-biden"]);
    expect(loadSotu({ fromYear: 1799, toYear: 1801 }).map((s) => s.id)).toEqual([
      "1799-adams",
      "1800-adams",
      "1801-jefferson",
    ]);
    expect(loadSotu({ toYear: 1789 })).toEqual([]);
  });

  it("returns copies that callers cannot use to alter the corpus", () => {
    const first = loadSotu({ toYear: 1790 })[0];
    if (!first) throw new Error("1790 missing");
    first.text = "";
    expect(loadSotu({ toYear: 1790 })[0]?.text.length).toBeGreaterThan(1000);
  });
});

describe("SOTU_QUERIES", () => {
  it("has at least 60 queries with unique ids, at least 10 of them in French", () => {
    expect(SOTU_QUERIES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(SOTU_QUERIES.map((q) => q.id)).size).toBe(SOTU_QUERIES.length);
    expect(SOTU_QUERIES.filter((q) => q.lang === "fr").length).toBeGreaterThanOrEqual(10);
    for (const q of SOTU_QUERIES) expect(["en", "fr"]).toContain(q.lang);
  });

  it("spans the 18th to the 21st century", () => {
    const centuries = new Set(
      SOTU_QUERIES.flatMap((q) => q.relevant.map((id) => Math.floor((byId.get(id)?.year ?? 0) / 100))),
    );
    expect([...centuries].sort()).toEqual([17, 18, 19, 20]);
  });

  it.each(SOTU_QUERIES.map((q) => [q.id, q] as const))("%s: judgments refer to real addresses", (_, q) => {
    expect(q.query.trim().length).toBeGreaterThan(20);
    expect(q.note.trim().length).toBeGreaterThan(20);
    expect(q.relevant.length).toBeGreaterThan(0);
    expect(new Set(q.relevant).size).toBe(q.relevant.length);
    for (const id of q.relevant) expect(byId.has(id), `${id} is not in the corpus`).toBe(true);
  });

  it.each(SOTU_QUERIES.map((q) => [q.id, q] as const))("%s: the keyword evidence supports the judgment", (_, q) => {
    // Every relevant address contains the evidence…
    for (const id of q.relevant) {
      expect(
        count(q.evidence.pattern, byId.get(id)?.text ?? ""),
        `${id} lacks /${q.evidence.pattern}/`,
      ).toBeGreaterThan(0);
    }
    // …and, where a threshold is set, no address that mentions it that often was left out.
    const { min } = q.evidence;
    if (min !== undefined) {
      const missed = speeches
        .filter((s) => !q.relevant.includes(s.id) && count(q.evidence.pattern, s.text) >= min)
        .map((s) => s.id);
      expect(missed, `addresses matching /${q.evidence.pattern}/ ≥ ${min} times but not judged`).toEqual([]);
    }
  });

  it.each(SOTU_QUERIES.map((q) => [q.id, q] as const))("%s: the quotations in the note are in the corpus", (_, q) => {
    normalizedTexts ??= speeches.map((s) => normalize(s.text));
    const texts = normalizedTexts;
    for (const [, quote] of q.note.matchAll(/“([^”]+)”/g)) {
      for (const fragment of (quote as string).split(/\s*\.\.\.\s*/)) {
        if (!fragment.trim()) continue;
        const wanted = normalize(fragment.trim());
        expect(
          texts.some((t) => t.includes(wanted)),
          `“${fragment}” not found`,
        ).toBe(true);
      }
    }
  });

  it.each(SOTU_QUERIES.map((q) => [q.id, q] as const))(
    "%s: the query paraphrases (no run of 6 words shared with a relevant address)",
    (_, q) => {
      const queryRuns = ngrams(words(q.query), 6);
      for (const id of q.relevant) {
        const speechRuns = runsOf(id);
        const shared = [...queryRuns].filter((run) => speechRuns.has(run));
        expect(shared, `${id} shares a run with the query`).toEqual([]);
      }
    },
  );
});
