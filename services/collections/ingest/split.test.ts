import { describe, expect, it } from "vitest";
import { IngestError } from "./errors.js";
import { type SplitOptions, splitText, validateSplitOptions } from "./split.js";

const words = (n: number) => Array.from({ length: n }, (_, i) => `mot${i}`).join(" ");

function invalid(o: SplitOptions): { param: string | undefined; message: string } {
  try {
    validateSplitOptions(o);
  } catch (e) {
    expect(e).toBeInstanceOf(IngestError);
    expect((e as IngestError).reason).toBe("INVALID_CHUNKING");
    return { param: (e as IngestError).param, message: (e as IngestError).message };
  }
  return expect.fail(`accepted ${JSON.stringify(o)}`);
}

describe("splitText", () => {
  it("respects the chunk size and loses no words without overlap", async () => {
    const text = words(500);
    const chunks = await splitText(text, { chunkSize: 100 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(100);
    expect(chunks.join(" ")).toBe(text);
  });

  it("defaults to 2048 characters and one chunk for short text", async () => {
    expect(await splitText("  Bonjour à tous.  ")).toEqual(["Bonjour à tous."]);
    const chunks = await splitText(words(1000));
    expect(chunks.length).toBeGreaterThan(1);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(2048);
  });

  it("repeats the end of a chunk at the start of the next with an overlap", async () => {
    const chunks = await splitText(words(200), { chunkSize: 60, chunkOverlap: 20 });
    for (let i = 1; i < chunks.length; i++) {
      const previous = (chunks[i - 1] as string).split(" ");
      const first = (chunks[i] as string).split(" ")[0] as string;
      expect(previous.slice(1)).toContain(first);
    }
    const none = await splitText(words(200), { chunkSize: 60 });
    expect(none.join(" ")).toBe(words(200));
    expect(chunks.length).toBeGreaterThan(none.length);
  });

  it("drops chunks below the minimum size, and fails when none is left", async () => {
    const text = "Titre\n\nUn paragraphe qui fait assez de caractères pour rester.\n\nFin";
    expect(await splitText(text, { chunkSize: 60, chunkMinSize: 10 })).toEqual([
      "Un paragraphe qui fait assez de caractères pour rester.",
    ]);
    await expect(splitText("court\n\nbref", { chunkSize: 6, chunkMinSize: 6 })).rejects.toMatchObject({
      reason: "EMPTY_DOCUMENT",
      message: "The document yields no chunk of at least 6 characters.",
    });
  });

  it("cuts Markdown at headings with the markdown preset, the heading opening its chunk", async () => {
    const section = (h: string) => `${h}\n\n${"Phrase de contenu assez longue pour remplir. ".repeat(3).trim()}`;
    const md = [section("# Introduction"), section("## Méthode"), section("### Détails"), section("## Résultats")].join(
      "\n\n",
    );
    const chunks = await splitText(md, { chunkSize: 200, preset: "markdown" });
    expect(chunks.map((c) => c.split("\n")[0])).toEqual([
      "# Introduction",
      "## Méthode",
      "### Détails",
      "## Résultats",
    ]);
    // the plain-text separators see only paragraphs: a heading ends up closing the previous chunk
    const plain = await splitText(md, { chunkSize: 200, preset: "text" });
    expect(plain[0]).toMatch(/\n\n## Méthode$/);
  });

  it("the html preset cuts before tags", async () => {
    const html = `<body><p>${"a ".repeat(30)}</p><p>${"b ".repeat(30)}</p></body>`;
    const chunks = await splitText(html, { chunkSize: 70, preset: "html" });
    expect(chunks.every((c) => c.length <= 70)).toBe(true);
    expect(chunks.filter((c) => c.startsWith("<p>"))).toHaveLength(2);
  });

  it("custom separators, literal or regular expressions", async () => {
    const text = "un;deux;trois;quatre;cinq;six";
    expect(await splitText(text, { chunkSize: 12, separators: [";"] })).toEqual([
      "un;deux",
      ";trois",
      ";quatre;cinq",
      ";six",
    ]);
    const numbered = "Article 1. Premier. Article 2. Deuxième. Article 10. Dixième.";
    const byArticle = await splitText(numbered, {
      chunkSize: 25,
      separators: ["Article \\d+\\."],
      isSeparatorRegex: true,
    });
    expect(byArticle).toEqual(["Article 1. Premier.", "Article 2. Deuxième.", "Article 10. Dixième."]);
    // the same pattern read literally matches nothing, so the last resort (characters) applies
    const literal = await splitText(numbered, { chunkSize: 25, separators: ["Article \\d+\\."] });
    expect(literal.every((c) => c.length <= 25)).toBe(true);
    expect(literal[0]).toBe("Article 1. Premier. Artic");
  });

  it("regular-expression separators fall back to characters and keep sizes", async () => {
    const chunks = await splitText("x".repeat(95), { chunkSize: 10, separators: ["\\n{2,}"], isSeparatorRegex: true });
    expect(chunks).toHaveLength(10);
    expect(chunks.every((c) => c.length <= 10)).toBe(true);
    const emoji = await splitText("😀".repeat(5), { chunkSize: 4, separators: ["-"], isSeparatorRegex: true });
    expect(emoji).toEqual(["😀😀", "😀😀", "😀"]);
  });

  it("disableChunking keeps the whole text, trimmed", async () => {
    const text = `\n${words(3000)}\n`;
    expect(await splitText(text, { disableChunking: true, chunkSize: 10 })).toEqual([text.trim()]);
    await expect(splitText(" \n ", { disableChunking: true })).rejects.toMatchObject({ reason: "EMPTY_DOCUMENT" });
  });

  it("whitespace-only text has no chunk", async () => {
    await expect(splitText("\n\n   \n\t")).rejects.toMatchObject({ reason: "EMPTY_DOCUMENT" });
  });
});

describe("validateSplitOptions", () => {
  it("accepts the defaults and the bounds", () => {
    expect(() => validateSplitOptions({})).not.toThrow();
    expect(() => validateSplitOptions({ chunkSize: 1 })).not.toThrow();
    expect(() => validateSplitOptions({ chunkSize: 65536, chunkOverlap: 65535, chunkMinSize: 65536 })).not.toThrow();
    expect(() => validateSplitOptions({ separators: Array(32).fill("x"), isSeparatorRegex: true })).not.toThrow();
  });

  it("names the option at fault", () => {
    expect(invalid({ chunkSize: 0 }).param).toBe("chunkSize");
    expect(invalid({ chunkSize: 65537 }).param).toBe("chunkSize");
    expect(invalid({ chunkSize: 10.5 }).param).toBe("chunkSize");
    expect(invalid({ chunkOverlap: -1 }).param).toBe("chunkOverlap");
    expect(invalid({ chunkSize: 100, chunkOverlap: 100 })).toEqual({
      param: "chunkOverlap",
      message: "The chunk overlap must be an integer from 0 to less than the chunk size (100).",
    });
    expect(invalid({ chunkMinSize: -1 }).param).toBe("chunkMinSize");
    expect(invalid({ chunkSize: 100, chunkMinSize: 101 }).param).toBe("chunkMinSize");
    expect(invalid({ preset: "latex" as "markdown" }).param).toBe("preset");
    expect(invalid({ separators: Array(33).fill("x") }).message).toBe("At most 32 separators.");
    expect(invalid({ separators: ["x".repeat(201)] }).param).toBe("separators");
    expect(invalid({ separators: ["\n"], preset: "markdown" }).param).toBe("separators");
    expect(invalid({ separators: [42 as unknown as string] }).param).toBe("separators");
  });

  it("checks regular expressions only when separators are regular expressions", () => {
    expect(() => validateSplitOptions({ separators: ["(unclosed"] })).not.toThrow();
    const bad = invalid({ separators: ["\\n", "(unclosed"], isSeparatorRegex: true });
    expect(bad.param).toBe("separators");
    expect(bad.message).toMatch(/^Separator 1 is not a valid regular expression: /);
  });

  it("splitText validates too, before doing anything", async () => {
    await expect(splitText("abc", { chunkSize: 0, disableChunking: true })).rejects.toMatchObject({
      reason: "INVALID_CHUNKING",
    });
  });
});
