import { IngestError } from "./errors.js";
import type { ParsedDocument } from "./types.js";

/**
 * The JSON upload format of the reference system: an array of `{ text, title?, metadata? }`, one document each.
 * Everything is checked before anything is returned, so that a bad item refuses the whole upload with its index
 * rather than storing half of it. Unknown keys are ignored.
 */
export function parseJsonDocuments(source: string): ParsedDocument[] {
  let data: unknown;
  try {
    data = JSON.parse(source);
  } catch (e) {
    const detail = e instanceof SyntaxError ? `: ${e.message}` : "";
    throw new IngestError("INVALID_JSON_DOCUMENT", `The file is not valid JSON${detail}.`, { cause: e });
  }
  if (!Array.isArray(data)) {
    throw new IngestError(
      "INVALID_JSON_DOCUMENT",
      'A JSON upload must be an array of objects such as {"text": "…", "title": "…", "metadata": {…}}.',
    );
  }
  if (data.length === 0) throw new IngestError("EMPTY_DOCUMENT", "The JSON array holds no documents.");
  return data.map((item, i) => parseItem(item, i));
}

function parseItem(item: unknown, i: number): ParsedDocument {
  const fail = (what: string) => new IngestError("INVALID_JSON_DOCUMENT", `Item ${i}: ${what}.`, { param: `[${i}]` });
  if (typeof item !== "object" || item === null || Array.isArray(item)) throw fail("must be an object");
  const { text, title, metadata } = item as Record<string, unknown>;
  if (typeof text !== "string" || text.trim() === "") throw fail("`text` must be a non-empty string");
  if (title !== undefined && title !== null && typeof title !== "string") throw fail("`title` must be a string");
  const meta: ParsedDocument["metadata"] = {};
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== "object" || Array.isArray(metadata)) throw fail("`metadata` must be an object");
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
        throw fail(`metadata "${key}" must be a string, a number or a boolean`);
      }
      meta[key] = value;
    }
  }
  return { title: typeof title === "string" && title.trim() !== "" ? title.trim() : null, text, metadata: meta };
}
