import { IngestError } from "./errors.js";
import { htmlToMarkdown } from "./markdown.js";
import type { ParsedDocument } from "./types.js";

/**
 * DOCX → HTML with mammoth (which maps Word's heading styles to h1…h6) → Markdown with turndown. Images are never
 * read (mammoth would otherwise base64 them into the HTML): only their alt text remains. The title is the first level-1
 * heading, because mammoth does not read the core properties and Word users rarely fill them in anyway.
 */
export async function parseDocx(bytes: Uint8Array): Promise<ParsedDocument> {
  const { default: mammoth } = await import("mammoth");
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      { convertImage: mammoth.images.imgElement(async () => ({ src: "" })), externalFileAccess: false },
    );
    html = result.value;
  } catch (e) {
    throw new IngestError("CORRUPT_DOCUMENT", "The Word document is damaged or truncated and cannot be read.", {
      cause: e,
    });
  }
  const text = await htmlToMarkdown(html);
  const { parseHTML } = await import("linkedom");
  const h1 = parseHTML(`<!DOCTYPE html><html><body>${html}</body></html>`).document.querySelector("h1");
  const title = h1?.textContent?.trim() || null;
  return { title, text, metadata: {} };
}
