/** The formats an upload can be parsed as; PDF, DOCX and HTML all come out as Markdown. */
export type DocumentFormat = "pdf" | "docx" | "html" | "markdown" | "text" | "json";

/**
 * One document extracted from an upload (a JSON array upload gives several). `text` is Markdown for pdf, docx and
 * html so that headings survive as split points; `metadata` holds flat values only, because it ends up in chunk
 * metadata that search filters compare.
 */
export interface ParsedDocument {
  title: string | null;
  text: string;
  metadata: Record<string, string | number | boolean>;
}

/** What the client sent: the bytes plus the two hints it may give (both may lie; the content wins). */
export interface UploadInput {
  bytes: Uint8Array;
  fileName?: string;
  declaredMime?: string;
}

/** The format chosen for an upload and its canonical MIME type (not the declared one). */
export interface DetectedFormat {
  format: DocumentFormat;
  mime: string;
}

/** The result of parsing one upload. */
export interface ParsedUpload extends DetectedFormat {
  documents: ParsedDocument[];
}
