import type { RecursiveCharacterTextSplitter } from "@langchain/textsplitters";
import { IngestError } from "./errors.js";

/**
 * How a document is cut into chunks; sizes are in characters (UTF-16 code units), like the reference system's
 * LangChain splitter, so that the same options give the same chunks.
 */
export interface SplitOptions {
  /** Upper bound of a chunk. Default 2048, at most 65536. */
  chunkSize?: number;
  /** Characters repeated from the end of a chunk at the start of the next (whole pieces, so at most this). */
  chunkOverlap?: number;
  /** Chunks shorter than this are dropped (headers, page numbers…). Default 0. */
  chunkMinSize?: number;
  /** Split points, tried in order; a last-resort "" (any character) is added so that chunkSize always holds. */
  separators?: string[];
  /** Read `separators` as regular expressions (JavaScript syntax, no flags). */
  isSeparatorRegex?: boolean;
  /** LangChain's separators for a language; "text" is paragraphs, lines, words. Exclusive with `separators`. */
  preset?: "markdown" | "html" | "text";
  /** Index the whole document as one chunk (short documents, FAQ entries). */
  disableChunking?: boolean;
}

export const SPLIT_DEFAULTS = { chunkSize: 2048, chunkOverlap: 0, chunkMinSize: 0 } as const;
export const MAX_CHUNK_SIZE = 65_536;
export const MAX_SEPARATORS = 32;
/** Long user patterns are where catastrophic backtracking hides; real separators are short. */
export const MAX_SEPARATOR_LENGTH = 200;
const PRESETS = ["markdown", "html", "text"] as const;
const TEXT_SEPARATORS = ["\n\n", "\n", " ", ""];

/**
 * Refuses options the splitter would reject or misbehave on, with the option at fault as `param`, so that a bad
 * request fails before the upload is parsed and stored.
 */
export function validateSplitOptions(o: SplitOptions): void {
  const fail = (param: string, message: string) => new IngestError("INVALID_CHUNKING", message, { param });
  const isInt = (v: number) => Number.isSafeInteger(v);
  const size = o.chunkSize ?? SPLIT_DEFAULTS.chunkSize;
  const overlap = o.chunkOverlap ?? SPLIT_DEFAULTS.chunkOverlap;
  const minSize = o.chunkMinSize ?? SPLIT_DEFAULTS.chunkMinSize;
  if (!isInt(size) || size < 1 || size > MAX_CHUNK_SIZE) {
    throw fail("chunkSize", `The chunk size must be an integer between 1 and ${MAX_CHUNK_SIZE}.`);
  }
  if (!isInt(overlap) || overlap < 0 || overlap >= size) {
    throw fail("chunkOverlap", `The chunk overlap must be an integer from 0 to less than the chunk size (${size}).`);
  }
  if (!isInt(minSize) || minSize < 0 || minSize > size) {
    throw fail("chunkMinSize", `The minimum chunk size must be an integer from 0 to the chunk size (${size}).`);
  }
  if (o.preset !== undefined && !(PRESETS as readonly string[]).includes(o.preset)) {
    throw fail("preset", `Unknown separator preset "${String(o.preset)}"; use one of ${PRESETS.join(", ")}.`);
  }
  if (o.separators === undefined) return;
  if (o.preset !== undefined) throw fail("separators", "Give either separators or a preset, not both.");
  if (!Array.isArray(o.separators) || o.separators.some((s) => typeof s !== "string")) {
    throw fail("separators", "Separators must be a list of strings.");
  }
  if (o.separators.length > MAX_SEPARATORS) throw fail("separators", `At most ${MAX_SEPARATORS} separators.`);
  o.separators.forEach((s, i) => {
    if (s.length > MAX_SEPARATOR_LENGTH) {
      throw fail("separators", `Separator ${i} is longer than ${MAX_SEPARATOR_LENGTH} characters.`);
    }
    if (!o.isSeparatorRegex) return;
    try {
      new RegExp(s, "g");
    } catch (e) {
      throw fail("separators", `Separator ${i} is not a valid regular expression: ${(e as Error).message}.`);
    }
  });
}

/**
 * Cuts a document into chunks with LangChain's RecursiveCharacterTextSplitter (the reference system's splitter):
 * the first separator found splits, pieces still too long are split with the next ones, and neighbours are merged
 * back up to chunkSize. Chunks below chunkMinSize and blank chunks are dropped; if nothing is left the document
 * counts as empty.
 */
export async function splitText(text: string, o: SplitOptions = {}): Promise<string[]> {
  validateSplitOptions(o);
  if (o.disableChunking) {
    const whole = text.trim();
    if (whole === "") throw new IngestError("EMPTY_DOCUMENT", "The document contains no text.");
    return [whole];
  }
  const chunkSize = o.chunkSize ?? SPLIT_DEFAULTS.chunkSize;
  const chunkMinSize = o.chunkMinSize ?? SPLIT_DEFAULTS.chunkMinSize;
  const { RecursiveCharacterTextSplitter } = await import("@langchain/textsplitters");
  const fields = { chunkSize, chunkOverlap: o.chunkOverlap ?? SPLIT_DEFAULTS.chunkOverlap };
  let chunks: string[];
  try {
    if (o.isSeparatorRegex && o.separators !== undefined) {
      const splitter = new RecursiveCharacterTextSplitter(fields);
      chunks = await splitOnPatterns(
        splitter,
        text,
        o.separators.filter((s) => s !== "").map((s) => new RegExp(s, "g")),
      );
    } else {
      const splitter = new RecursiveCharacterTextSplitter({
        ...fields,
        separators: separatorsFor(o, RecursiveCharacterTextSplitter),
      });
      chunks = await splitter.splitText(text);
    }
  } catch (e) {
    throw new IngestError("CHUNKING_FAILED", "The document could not be split into chunks.", { cause: e });
  }
  const kept = chunks.map((c) => c.trim()).filter((c) => c !== "" && c.length >= chunkMinSize);
  if (kept.length === 0) {
    const why = chunkMinSize > 0 ? ` of at least ${chunkMinSize} characters` : "";
    throw new IngestError("EMPTY_DOCUMENT", `The document yields no chunk${why}.`);
  }
  return kept;
}

function separatorsFor(o: SplitOptions, Splitter: typeof RecursiveCharacterTextSplitter): string[] {
  if (o.separators !== undefined) return o.separators.includes("") ? o.separators : [...o.separators, ""];
  if (o.preset === "html") return Splitter.getSeparatorsForLanguage("html");
  if (o.preset === "markdown") {
    // LangChain.js starts at "\n## " (Python uses a regex for all six levels): add the level-1 heading
    const md = Splitter.getSeparatorsForLanguage("markdown");
    return md.includes("\n# ") ? md : ["\n# ", ...md];
  }
  return TEXT_SEPARATORS;
}

/**
 * RecursiveCharacterTextSplitter's algorithm with regular-expression separators, which LangChain.js lacks (its
 * recursion is private and uses `includes`/`split` on strings). The library still merges the pieces, so sizes and
 * overlap behave exactly as with literal separators; each match is kept at the start of the piece it opens.
 */
async function splitOnPatterns(
  splitter: RecursiveCharacterTextSplitter,
  text: string,
  patterns: RegExp[],
): Promise<string[]> {
  const index = patterns.findIndex((re) => text.search(re) !== -1);
  // no pattern matches: the last resort is single characters (code points, never half a surrogate pair)
  const pieces = index === -1 ? Array.from(text) : splitBefore(text, patterns[index] as RegExp);
  const rest = index === -1 ? undefined : patterns.slice(index + 1);
  const chunks: string[] = [];
  let small: string[] = [];
  for (const piece of pieces) {
    if (piece.length < splitter.chunkSize) {
      small.push(piece);
      continue;
    }
    if (small.length > 0) chunks.push(...(await splitter.mergeSplits(small, "")));
    small = [];
    chunks.push(...(rest === undefined ? [piece] : await splitOnPatterns(splitter, piece, rest)));
  }
  if (small.length > 0) chunks.push(...(await splitter.mergeSplits(small, "")));
  return chunks;
}

/** Splits before every match, keeping the match with what follows (LangChain's keepSeparator). */
function splitBefore(text: string, re: RegExp): string[] {
  const pieces: string[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) {
      pieces.push(text.slice(last, m.index));
      last = m.index;
    }
  }
  pieces.push(text.slice(last));
  return pieces.filter((p) => p !== "");
}
