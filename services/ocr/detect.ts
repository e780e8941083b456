import { ocrError } from "./errors.js";

/** What the gateway reads: a PDF (rendered page by page) or an image (sent as is). */
export type DocumentKind = { kind: "pdf" } | { kind: "image"; mime: ImageMime };

export type ImageMime = "image/png" | "image/jpeg" | "image/webp";
const IMAGES = new Set<string>(["image/png", "image/jpeg", "image/webp"]);
const SUPPORTED = "supported types are PDF, PNG, JPEG and WebP";

/**
 * The content decides (file-type's magic numbers), as for document uploads: clients often declare a generic or wrong
 * type. The declared type only explains a refusal, e.g. a "PDF" that is not one.
 */
export async function detectKind(bytes: Uint8Array, declaredMime: string, param: string): Promise<DocumentKind> {
  const { fileTypeFromBuffer } = await import("file-type");
  const sniffed = await fileTypeFromBuffer(bytes);
  if (sniffed?.mime === "application/pdf") return { kind: "pdf" };
  if (sniffed && IMAGES.has(sniffed.mime)) return { kind: "image", mime: sniffed.mime as ImageMime };
  const declared = declaredMime.split(";")[0]?.trim().toLowerCase() ?? "";
  if (declared === "application/pdf" || IMAGES.has(declared)) {
    throw ocrError(
      "CORRUPT_DOCUMENT",
      `The document is declared as ${declared} but its content is not one` +
        (sniffed ? ` (found ${sniffed.mime}).` : "."),
      param,
    );
  }
  const what = sniffed ? sniffed.mime : "data of an unknown type";
  throw ocrError("UNSUPPORTED_FILE_TYPE", `The document is ${what}, which cannot be read; ${SUPPORTED}.`, param);
}
