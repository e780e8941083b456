import { describe, expect, it } from "vitest";
import {
  latin1,
  makeCorruptDocx,
  makeCorruptPdf,
  makeDocx,
  makeHtml,
  makePdf,
  makePng,
  utf8,
} from "../../../test/fixtures/documents.js";
import { DOCX_MIME, decodeText, detectFormat, PDF_MIME } from "./detect.js";
import type { IngestErrorReason } from "./errors.js";

async function refusal(
  input: Parameters<typeof detectFormat>[0],
): Promise<{ reason: IngestErrorReason; message: string }> {
  const error = await detectFormat(input).then(
    () => expect.fail("detectFormat accepted the upload"),
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: "IngestError" });
  return error as { reason: IngestErrorReason; message: string };
}

describe("binary formats are recognised by their content", () => {
  it("PDF and DOCX, whatever the name says", async () => {
    const pdf = await makePdf(["Bonjour"]);
    expect(await detectFormat({ bytes: pdf, fileName: "rapport.pdf" })).toEqual({ format: "pdf", mime: PDF_MIME });
    expect(await detectFormat({ bytes: pdf, fileName: "notes.txt", declaredMime: "text/plain" })).toEqual({
      format: "pdf",
      mime: PDF_MIME,
    });
    const docx = await makeDocx([{ text: "Bonjour" }]);
    expect(await detectFormat({ bytes: docx })).toEqual({ format: "docx", mime: DOCX_MIME });
  });

  it("refuses known binary types it does not parse, even named .txt", async () => {
    const png = await refusal({ bytes: makePng(), fileName: "photo.txt" });
    expect(png.reason).toBe("UNSUPPORTED_FILE_TYPE");
    expect(png.message).toContain("image/png");
    // a half docx is no longer recognised as Word, only as a zip archive
    const zip = await refusal({ bytes: await makeCorruptDocx(), fileName: "archive.txt" });
    expect(zip).toMatchObject({ reason: "UNSUPPORTED_FILE_TYPE", message: expect.stringContaining("application/zip") });
  });

  it("refuses binary data of no known type", async () => {
    const junk = new Uint8Array(256).map((_, i) => (i * 7) % 256);
    expect((await refusal({ bytes: junk, fileName: "data.bin" })).reason).toBe("UNSUPPORTED_FILE_TYPE");
  });

  it("explains a .pdf or .docx whose content is something else", async () => {
    const fake = await refusal({ bytes: utf8("juste du texte"), fileName: "rapport.pdf" });
    expect(fake).toEqual(expect.objectContaining({ reason: "CORRUPT_DOCUMENT" }));
    expect(fake.message).toBe('"rapport.pdf" is declared as a PDF but its content is not a PDF.');
    const declared = await refusal({ bytes: utf8("texte"), declaredMime: PDF_MIME });
    expect(declared.message).toBe("The file is declared as a PDF but its content is not a PDF.");
    const docx = await refusal({ bytes: await makeCorruptDocx(), fileName: "lettre.docx" });
    expect(docx.reason).toBe("CORRUPT_DOCUMENT");
    expect(docx.message).toContain("application/zip");
  });

  it("a .pdf with junk before its header is still a PDF (readers allow 1 KiB)", async () => {
    const pdf = await makePdf(["Bonjour"]);
    const bytes = new Uint8Array([...utf8("junk\r\n"), ...pdf]);
    expect((await detectFormat({ bytes, fileName: "scan.PDF" })).format).toBe("pdf");
    expect((await refusal({ bytes, fileName: "scan.txt" })).reason).toBe("UNSUPPORTED_FILE_TYPE");
  });

  it("a damaged PDF still sniffs as PDF (the parser reports the damage)", async () => {
    expect((await detectFormat({ bytes: await makeCorruptPdf() })).format).toBe("pdf");
  });

  it("an empty file is an empty document", async () => {
    const empty = await refusal({ bytes: new Uint8Array(0), fileName: "vide.txt" });
    expect(empty).toMatchObject({ reason: "EMPTY_DOCUMENT", message: '"vide.txt" is empty.' });
  });
});

describe("text formats", () => {
  const text = utf8("# Titre\n\nDu texte.");

  it("by extension, then declared MIME (parameters ignored)", async () => {
    expect(await detectFormat({ bytes: text, fileName: "a/b/README.MD" })).toEqual({
      format: "markdown",
      mime: "text/markdown",
    });
    expect(await detectFormat({ bytes: text, fileName: "notes.txt" })).toMatchObject({ format: "text" });
    expect(await detectFormat({ bytes: text, declaredMime: "text/markdown; charset=utf-8" })).toMatchObject({
      format: "markdown",
    });
    expect(await detectFormat({ bytes: utf8("[]"), fileName: "docs.json" })).toMatchObject({ format: "json" });
    expect(await detectFormat({ bytes: utf8("{}"), declaredMime: "application/ld+json" })).toMatchObject({
      format: "json",
    });
    const html = makeHtml({ paragraphs: ["a"] });
    expect(await detectFormat({ bytes: html, fileName: "page.htm" })).toEqual({ format: "html", mime: "text/html" });
  });

  it("the name wins over the content for text formats", async () => {
    expect(await detectFormat({ bytes: makeHtml({ paragraphs: ["a"] }), fileName: "source.txt" })).toMatchObject({
      format: "text",
    });
  });

  it("by content when neither name nor type tells", async () => {
    const generic = { declaredMime: "application/octet-stream" };
    expect(await detectFormat({ bytes: makeHtml({ paragraphs: ["a"] }), ...generic })).toMatchObject({
      format: "html",
    });
    expect(await detectFormat({ bytes: utf8("<!-- x -->\n<div><p>Bonjour</p></div>") })).toMatchObject({
      format: "html",
    });
    expect(await detectFormat({ bytes: utf8('<?xml version="1.0"?>\n<html><body/></html>') })).toMatchObject({
      format: "html",
    });
    expect(await detectFormat({ bytes: utf8('[{"text": "a"}]'), fileName: "export" })).toMatchObject({
      format: "json",
    });
    expect(await detectFormat({ bytes: utf8("[Note] pas du JSON"), ...generic })).toMatchObject({ format: "text" });
    // many comments and no markup after them: a careless pattern would backtrack for minutes here
    expect(await detectFormat({ bytes: utf8(`${"<!--a-->".repeat(500)}x`) })).toMatchObject({ format: "text" });
    expect(await detectFormat({ bytes: utf8("a < b, c > d"), fileName: "x.log" })).toEqual({
      format: "text",
      mime: "text/plain",
    });
  });
});

describe("decoding", () => {
  it("UTF-8 first, with its BOM removed", () => {
    expect(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("été")]))).toBe("été");
  });

  it("falls back to Latin-1 (windows-1252) when the bytes are not UTF-8", () => {
    expect(decodeText(latin1("Où est la crème brûlée ? Ça va, garçon."))).toBe(
      "Où est la crème brûlée ? Ça va, garçon.",
    );
    // 0x80 is € in windows-1252, a control character in strict ISO-8859-1
    expect(decodeText(new Uint8Array([0x35, 0x20, 0x80]))).toBe("5 €");
  });

  it("UTF-16 with a byte-order mark", () => {
    const le = new Uint8Array([0xff, 0xfe, ...Buffer.from("Noël", "utf16le")]);
    expect(decodeText(le)).toBe("Noël");
  });

  it("NUL bytes or many control characters mean binary", () => {
    expect(decodeText(new Uint8Array([0x61, 0x00, 0x62]))).toBeNull();
    expect(decodeText(new Uint8Array(100).fill(0x01))).toBeNull();
    expect(decodeText(utf8("tab\tand\r\nnew lines\f"))).toBe("tab\tand\r\nnew lines\f");
  });
});
