import { sniffUpload } from "./detect.js";
import { IngestError } from "./errors.js";
import { normalizeText } from "./markdown.js";
import { parseDocx } from "./parse-docx.js";
import { parseHtml } from "./parse-html.js";
import { parseJsonDocuments } from "./parse-json.js";
import { parsePdf } from "./parse-pdf.js";
import type { ParsedDocument, ParsedUpload, UploadInput } from "./types.js";

/**
 * Detects and parses one upload, in the calling thread. Meant for the parser worker (see parser-pool.ts); the
 * libraries are imported on first use by each format's parser, so importing this module costs nothing.
 */
export async function parseUpload(input: UploadInput): Promise<ParsedUpload> {
  const sniffed = await sniffUpload(input);
  const text = sniffed.text ?? "";
  let documents: ParsedDocument[];
  switch (sniffed.format) {
    case "pdf":
      documents = [await parsePdf(input.bytes)];
      break;
    case "docx":
      documents = [await parseDocx(input.bytes)];
      break;
    case "html":
      documents = [await parseHtml(text)];
      break;
    case "json":
      documents = parseJsonDocuments(text);
      break;
    case "markdown":
      documents = [{ title: firstHeading(text), text, metadata: {} }];
      break;
    case "text":
      documents = [{ title: null, text, metadata: {} }];
      break;
  }
  documents = documents.map((d, i) => {
    const clean = normalizeText(d.text);
    if (clean === "") {
      const which = documents.length > 1 ? `Document ${i}` : "The document";
      throw new IngestError("EMPTY_DOCUMENT", `${which} contains no text.`);
    }
    return { ...d, text: clean };
  });
  return { format: sniffed.format, mime: sniffed.mime, documents };
}

/** The first ATX level-1 heading (`# Title`), the usual title of a Markdown file. */
function firstHeading(markdown: string): string | null {
  const match = /^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/m.exec(markdown);
  return match?.[1]?.trim() || null;
}
