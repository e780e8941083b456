import { IngestError } from "./errors.js";
import type { ParsedDocument } from "./types.js";

/** Between pages: a Markdown thematic break, which the markdown splitter also treats as a split point. */
export const PAGE_BREAK = "\n\n---\n\n";

/**
 * PDF → text with unpdf (pdf.js, serverless build: no pdf.js worker, no font or CMap downloads, eval disabled).
 * One string per page, joined with {@link PAGE_BREAK}; the title comes from the document information dictionary.
 */
export async function parsePdf(bytes: Uint8Array): Promise<ParsedDocument> {
  const { extractText, getDocumentProxy, getMeta } = await import("unpdf");
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // verbosity 0 = errors only: pdf.js otherwise prints "Warning: …" lines on stdout for damaged files
    pdf = await getDocumentProxy(bytes, { verbosity: 0 });
  } catch (e) {
    throw new IngestError("CORRUPT_DOCUMENT", pdfOpenMessage(e), { cause: e });
  }
  try {
    const [meta, content] = await Promise.all([getMeta(pdf), extractText(pdf, { mergePages: false })]);
    const pages = content.text.map((page) =>
      page
        .replace(/[^\S\n]+/g, " ")
        .replace(/ ?\n ?/g, "\n")
        .trim(),
    );
    const text = pages.filter((p) => p !== "").join(PAGE_BREAK);
    if (text === "") {
      throw new IngestError(
        "EMPTY_DOCUMENT",
        "The PDF contains no extractable text (a scanned document? Text recognition is not supported).",
      );
    }
    const info = meta.info as Record<string, unknown>;
    const title = typeof info.Title === "string" && info.Title.trim() !== "" ? info.Title.trim() : null;
    return { title, text, metadata: { pages: content.totalPages } };
  } catch (e) {
    if (e instanceof IngestError) throw e;
    throw new IngestError("CORRUPT_DOCUMENT", "The PDF is damaged: its pages could not be read.", { cause: e });
  } finally {
    await pdf.destroy().catch(() => {});
  }
}

function pdfOpenMessage(e: unknown): string {
  const name = e instanceof Error ? e.name : "";
  if (name === "PasswordException") return "The PDF is password-protected.";
  return "The PDF is damaged or truncated and cannot be read.";
}
