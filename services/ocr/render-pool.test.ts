import { ConnectError } from "@connectrpc/connect";
import { createCanvas, loadImage } from "@napi-rs/canvas";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { makeCorruptPdf } from "../../test/fixtures/documents.js";
import { detectKind } from "./detect.js";
import { imageHeaderSize } from "./image-header.js";
import { createRenderPool, shareBytes } from "./render-pool.js";

const pool = createRenderPool({ threads: 2, dpi: 144, maxSidePx: 1000 });
afterAll(() => pool.close());

const reasonOf = async (p: Promise<unknown>) => {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(ConnectError);
  const info = (e as ConnectError).findDetails(ErrorInfoSchema)[0];
  return [info?.reason, info?.param];
};

async function pdf(sizes: [number, number][]): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const [w, h] of sizes) doc.addPage([w, h]).drawText("Texte", { x: 10, y: h - 40, size: 24, font });
  return doc.save();
}

/** Dark pixels of a PNG: a page whose text was drawn has some. */
async function darkPixels(png: Uint8Array): Promise<number> {
  const img = await loadImage(Buffer.from(png));
  const ctx = createCanvas(img.width, img.height).getContext("2d");
  ctx.drawImage(img, 0, 0);
  const { data } = ctx.getImageData(0, 0, img.width, img.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if ((data[i] ?? 255) < 128 && (data[i + 3] ?? 0) > 0) n++;
  return n;
}

describe("the render pool", () => {
  it("counts pages and renders each at the configured resolution, text included", async () => {
    const bytes = shareBytes(
      await pdf([
        [100, 200],
        [200, 100],
      ]),
    );
    expect(await pool.pageCount(bytes)).toBe(2);
    const [a, b] = await Promise.all([pool.render(bytes, 0), pool.render(bytes, 1)]);
    expect([a?.width, a?.height, a?.dpi]).toEqual([200, 400, 144]);
    expect([b?.width, b?.height]).toEqual([400, 200]);
    // Text runs need a Node 20 shim in the worker (render-worker.ts): without it pages come out blank.
    expect(await darkPixels(a.png)).toBeGreaterThan(50);
  });

  it("lowers the resolution of a page too large to render whole", async () => {
    const page = await pool.render(shareBytes(await pdf([[1000, 500]])), 0);
    expect([page.width, page.height, page.dpi]).toEqual([1000, 500, 72]);
  });

  it("refuses a damaged PDF with CORRUPT_DOCUMENT naming the field", async () => {
    expect(await reasonOf(pool.pageCount(await makeCorruptPdf(), undefined, "document_url"))).toEqual([
      "CORRUPT_DOCUMENT",
      "document_url",
    ]);
  });
});

describe("image headers", () => {
  it("reads the size of PNG, JPEG and WebP (lossy and lossless) images without decoding them", async () => {
    const canvas = createCanvas(37, 21);
    expect(imageHeaderSize(await canvas.encode("png"), "image/png")).toEqual({ width: 37, height: 21 });
    expect(imageHeaderSize(await canvas.encode("jpeg"), "image/jpeg")).toEqual({ width: 37, height: 21 });
    expect(imageHeaderSize(await canvas.encode("webp", 80), "image/webp")).toEqual({ width: 37, height: 21 });
    expect(imageHeaderSize(await canvas.encode("webp", 100), "image/webp")).toEqual({ width: 37, height: 21 });
  });

  it("answers null for a header cut short or damaged", async () => {
    const png = await createCanvas(5, 5).encode("png");
    const jpeg = await createCanvas(5, 5).encode("jpeg");
    expect(imageHeaderSize(png.subarray(0, 20), "image/png")).toBeNull();
    expect(imageHeaderSize(jpeg.subarray(0, 30), "image/jpeg")).toBeNull();
    expect(imageHeaderSize(Buffer.from("RIFF\0\0\0\0WEBPJUNKJUNKJUNKJUNKJUNK"), "image/webp")).toBeNull();
  });
});

describe("document detection", () => {
  it("knows PDFs and PNG, JPEG, WebP images by their content", async () => {
    expect(await detectKind(await pdf([[10, 10]]), "", "d")).toEqual({ kind: "pdf" });
    const canvas = createCanvas(4, 4);
    expect(await detectKind(await canvas.encode("png"), "application/pdf", "d")).toEqual({
      kind: "image",
      mime: "image/png",
    });
    expect(await detectKind(await canvas.encode("jpeg"), "", "d")).toEqual({ kind: "image", mime: "image/jpeg" });
    expect(await detectKind(await canvas.encode("webp"), "", "d")).toEqual({ kind: "image", mime: "image/webp" });
  });

  it("refuses other content, and explains a declared type the content contradicts", async () => {
    const text = new TextEncoder().encode("just some text");
    expect(await reasonOf(detectKind(text, "", "d"))).toEqual(["UNSUPPORTED_FILE_TYPE", "d"]);
    expect(await reasonOf(detectKind(text, "application/pdf", "d"))).toEqual(["CORRUPT_DOCUMENT", "d"]);
  });
});
