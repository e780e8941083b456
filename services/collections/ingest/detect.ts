import { IngestError } from "./errors.js";
import type { DetectedFormat, DocumentFormat, UploadInput } from "./types.js";

export const PDF_MIME = "application/pdf";
export const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

const CANONICAL_MIME: Record<DocumentFormat, string> = {
  pdf: PDF_MIME,
  docx: DOCX_MIME,
  html: "text/html",
  markdown: "text/markdown",
  text: "text/plain",
  json: "application/json",
};

const BY_EXTENSION: Record<string, DocumentFormat> = {
  pdf: "pdf",
  docx: "docx",
  html: "html",
  htm: "html",
  xhtml: "html",
  md: "markdown",
  markdown: "markdown",
  mdown: "markdown",
  mkd: "markdown",
  txt: "text",
  text: "text",
  json: "json",
};

const BY_MIME: Record<string, DocumentFormat> = {
  [PDF_MIME]: "pdf",
  [DOCX_MIME]: "docx",
  "text/html": "html",
  "application/xhtml+xml": "html",
  "text/markdown": "markdown",
  "text/x-markdown": "markdown",
  "text/plain": "text",
  "application/json": "json",
};

const SUPPORTED = "supported types are PDF, DOCX, HTML, Markdown, plain text and JSON";

/** A text upload after detection: its format and the decoded text, so that the parser does not decode twice. */
export interface SniffedUpload extends DetectedFormat {
  /** Set for the text formats (html, markdown, text, json); binary formats are read by their library. */
  text?: string;
}

/**
 * Chooses how to read an upload. The content decides first (file-type's magic numbers: a PDF named .txt is still a
 * PDF, a PNG named .txt is refused); the file name and declared MIME, which clients often get wrong or leave generic
 * (curl sends application/octet-stream), only choose between the text formats, and explain a mismatch when a file
 * claims to be a PDF or DOCX but is not one.
 */
export async function detectFormat(input: UploadInput): Promise<DetectedFormat> {
  const { format, mime } = await sniffUpload(input);
  return { format, mime };
}

/** {@link detectFormat}, also returning the decoded text of text formats. */
export async function sniffUpload(input: UploadInput): Promise<SniffedUpload> {
  const { bytes } = input;
  const name = input.fileName ? `"${input.fileName}"` : "the file";
  if (bytes.length === 0) throw new IngestError("EMPTY_DOCUMENT", `${capitalize(name)} is empty.`);

  const hint = hintFromName(input.fileName) ?? hintFromMime(input.declaredMime);
  const { fileTypeFromBuffer } = await import("file-type");
  const sniffed = await fileTypeFromBuffer(bytes);
  if (sniffed?.mime === PDF_MIME || (hint === "pdf" && hasPdfHeaderLate(bytes)))
    return { format: "pdf", mime: PDF_MIME };
  if (sniffed?.mime === DOCX_MIME) return { format: "docx", mime: DOCX_MIME };
  if (hint === "pdf") {
    throw new IngestError("CORRUPT_DOCUMENT", `${capitalize(name)} is declared as a PDF but its content is not a PDF.`);
  }
  if (hint === "docx") {
    throw new IngestError(
      "CORRUPT_DOCUMENT",
      `${capitalize(name)} is declared as a Word document but its content is not a readable DOCX` +
        (sniffed ? ` (found ${sniffed.mime}).` : "."),
    );
  }
  // file-type also recognises a few text formats (XML, iCalendar, WebVTT…): those go on as text.
  const textLike = !sniffed || sniffed.mime.startsWith("text/") || sniffed.mime === "application/xml";
  if (!textLike) {
    throw new IngestError(
      "UNSUPPORTED_FILE_TYPE",
      `${capitalize(name)} is ${sniffed.mime}, which is not supported; ${SUPPORTED}.`,
    );
  }

  const text = decodeText(bytes);
  if (text === null) {
    throw new IngestError(
      "UNSUPPORTED_FILE_TYPE",
      `${capitalize(name)} is binary data of an unknown type; ${SUPPORTED}.`,
    );
  }
  const format = hint ?? guessTextFormat(text);
  return { format, mime: CANONICAL_MIME[format], text };
}

function hintFromName(fileName: string | undefined): DocumentFormat | undefined {
  if (!fileName) return undefined;
  const base = fileName.slice(Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\")) + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? BY_EXTENSION[base.slice(dot + 1).toLowerCase()] : undefined;
}

function hintFromMime(declared: string | undefined): DocumentFormat | undefined {
  const essence = declared?.split(";")[0]?.trim().toLowerCase();
  if (!essence) return undefined;
  return BY_MIME[essence] ?? (essence.endsWith("+json") ? "json" : undefined);
}

/** PDF readers accept up to 1 KiB of junk before `%PDF-`; file-type only looks at offset 0. */
function hasPdfHeaderLate(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 1024)).includes("%PDF-");
}

/**
 * Decodes text the way the reference system does (UTF-8, else Latin-1), or returns null for binary content.
 * "Latin-1" files are in practice windows-1252: bytes 0x80–0x9F are the curly quotes, dashes, € and Œ, not the
 * invisible C1 controls of strict ISO-8859-1, so those are mapped. (Node's own TextDecoder("windows-1252")
 * decodes them as ISO-8859-1 before Node 23, hence the explicit table.) UTF-16 is recognised by its BOM only.
 */
export function decodeText(bytes: Uint8Array): string | null {
  const b0 = bytes[0];
  const b1 = bytes[1];
  if ((b0 === 0xff && b1 === 0xfe) || (b0 === 0xfe && b1 === 0xff)) {
    return new TextDecoder(b0 === 0xff ? "utf-16le" : "utf-16be").decode(bytes);
  }
  if (looksBinary(bytes)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      .toString("latin1")
      .replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] ?? c);
  }
}

/** windows-1252 for 0x80–0x9F; the five undefined positions stay as they are. */
const WINDOWS_1252_C1 = [..."€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ"];

/** Text files have no NUL bytes and few control characters; a sample of the start is enough to tell. */
function looksBinary(bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, 8192);
  let control = 0;
  for (const b of sample) {
    if (b === 0) return true;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d && b !== 0x1b) control++;
  }
  return control > sample.length * 0.05;
}

// The comment body cannot run past "-->", so that many comments cannot make the match backtrack exponentially.
const MARKUP =
  /^\s*(?:<\?xml[^>]*>\s*)?(?:<!--(?:[^-]|-(?!->))*-->\s*)*<(?:!doctype\s+html|html|head|body|div|p|article|main|section|h[1-6]|table|ul|ol)[\s>]/i;

/** Without a usable name or MIME: markup is HTML, a JSON array is the JSON upload format, anything else plain text. */
function guessTextFormat(text: string): DocumentFormat {
  if (MARKUP.test(text.slice(0, 65_536))) return "html";
  if (/^\s*\[/.test(text)) {
    try {
      if (Array.isArray(JSON.parse(text))) return "json";
    } catch {
      // not JSON after all: plain text that starts with a bracket
    }
  }
  return "text";
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
