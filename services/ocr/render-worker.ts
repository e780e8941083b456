/**
 * The piscina tasks of the OCR render pool (render-pool.ts); never imported by the main thread. Failures the client
 * caused (a damaged PDF, a page that does not exist) come back as plain `{ok: false}` objects, because errors
 * crossing a worker boundary lose their class; anything else is thrown for piscina to relay.
 */
import type { getDocumentProxy } from "unpdf";
import type { OcrFailureReason } from "./errors.js";

// pdf.js (unpdf 1.7) compiles fonts with ArrayBuffer.prototype.transferToFixedLength, which Node 20 lacks: without
// it every text run is silently dropped and pages render blank. A copying stand-in is enough (pdf.js only shrinks a
// scratch buffer it no longer uses). Installed in this worker's own realm, never in the gateway's main thread.
const proto = ArrayBuffer.prototype as ArrayBuffer & { transferToFixedLength?: (n?: number) => ArrayBuffer };
proto.transferToFixedLength ??= function (this: ArrayBuffer, length = this.byteLength): ArrayBuffer {
  const out = new ArrayBuffer(length);
  new Uint8Array(out).set(new Uint8Array(this, 0, Math.min(length, this.byteLength)));
  return out;
};

type PDFDocumentProxy = Awaited<ReturnType<typeof getDocumentProxy>>;

export type Failed = { ok: false; reason: OcrFailureReason; message: string };
export type InspectReply = { ok: true; pageCount: number } | Failed;
export type RenderReply = { ok: true; png: Uint8Array; width: number; height: number; dpi: number } | Failed;

const canvasImport = () => import("@napi-rs/canvas");

/** Opens the PDF (a private copy: pdf.js may take ownership of the buffer it is given). */
async function open(bytes: Uint8Array): Promise<PDFDocumentProxy | Failed> {
  const { createIsomorphicCanvasFactory, getDocumentProxy: openPdf } = await import("unpdf");
  const CanvasFactory = await createIsomorphicCanvasFactory(canvasImport);
  try {
    // verbosity 0 = errors only: pdf.js otherwise prints "Warning: …" lines on stdout for damaged files
    return await openPdf(bytes.slice(), { verbosity: 0, CanvasFactory });
  } catch (e) {
    const locked = e instanceof Error && e.name === "PasswordException";
    return {
      ok: false,
      reason: "CORRUPT_DOCUMENT",
      message: locked ? "The PDF is password-protected." : "The PDF is damaged or truncated and cannot be read.",
    };
  }
}

/** The page count of a PDF: checks that it opens before anything is admitted or rendered. */
export default async function inspectPdf(task: { bytes: Uint8Array }): Promise<InspectReply> {
  const pdf = await open(task.bytes);
  if ("ok" in pdf) return pdf;
  try {
    return { ok: true, pageCount: pdf.numPages };
  } finally {
    await pdf.destroy().catch(() => {});
  }
}

/**
 * One page (0-based) as a PNG at `dpi`, scaled down when its longer side would exceed `maxSidePx` (a poster-sized
 * page at 150 dpi would otherwise need hundreds of megabytes of canvas); `dpi` in the reply is the one used.
 */
export async function renderPage(task: {
  bytes: Uint8Array;
  page: number;
  dpi: number;
  maxSidePx: number;
}): Promise<RenderReply> {
  const pdf = await open(task.bytes);
  if ("ok" in pdf) return pdf;
  try {
    const { renderPageAsImage } = await import("unpdf");
    let page: Awaited<ReturnType<PDFDocumentProxy["getPage"]>>;
    try {
      page = await pdf.getPage(task.page + 1);
    } catch {
      return { ok: false, reason: "CORRUPT_DOCUMENT", message: `Page ${task.page} of the PDF is damaged.` };
    }
    const base = page.getViewport({ scale: 1 });
    const longest = Math.max(base.width, base.height, 1);
    const scale = Math.min(task.dpi / 72, task.maxSidePx / longest);
    const dpi = Math.round(scale * 72);
    let png: ArrayBuffer;
    try {
      png = await renderPageAsImage(pdf, task.page + 1, { canvasImport, scale });
    } catch {
      return { ok: false, reason: "CORRUPT_DOCUMENT", message: `Page ${task.page} of the PDF could not be rendered.` };
    }
    const view = new DataView(png);
    // The IHDR chunk of a PNG: width and height at bytes 16 and 20.
    return { ok: true, png: new Uint8Array(png), width: view.getUint32(16), height: view.getUint32(20), dpi };
  } finally {
    await pdf.destroy().catch(() => {});
  }
}
