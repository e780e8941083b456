import { afterAll, describe, expect, it } from "vitest";
import {
  latin1,
  makeBlankPdf,
  makeCorruptDocx,
  makeCorruptPdf,
  makeDocx,
  makeHtml,
  makeJsonDocuments,
  makePdf,
  utf8,
} from "../../../test/fixtures/documents.js";
import type { IngestError } from "./errors.js";
import { createParserPool } from "./parser-pool.js";
import type { UploadInput } from "./types.js";

// Every parse goes through the worker pool, as in production.
const pool = createParserPool({ maxThreads: 2 });
afterAll(() => pool.close());

async function refusal(input: UploadInput): Promise<IngestError> {
  const error = await pool.parse(input).then(
    () => expect.fail("the upload was accepted"),
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: "IngestError" });
  return error as IngestError;
}

const ACCENTS = "Qualité de l'eau en Île-de-France : été, garçon, à côté, Œuvre, 5 €.";

describe("PDF", () => {
  it("gives the text of every page, in order, with accents and the document title", async () => {
    const bytes = await makePdf([`Rapport annuel\n${ACCENTS}`, "Deuxième page.", "Troisième page."], {
      title: "Rapport sur l'eau",
    });
    const parsed = await pool.parse({ bytes, fileName: "rapport.pdf" });
    expect(parsed).toMatchObject({ format: "pdf", mime: "application/pdf" });
    expect(parsed.documents).toEqual([
      {
        title: "Rapport sur l'eau",
        text: `Rapport annuel\n${ACCENTS}\n\n---\n\nDeuxième page.\n\n---\n\nTroisième page.`,
        metadata: { pages: 3 },
      },
    ]);
  });

  it("skips blank pages and has no title without one", async () => {
    const bytes = await makePdf(["Première.", "", "Dernière."]);
    const [doc] = (await pool.parse({ bytes })).documents;
    expect(doc).toEqual({ title: null, text: "Première.\n\n---\n\nDernière.", metadata: { pages: 3 } });
  });

  it("a PDF without text (a scan) is empty", async () => {
    const error = await refusal({ bytes: await makeBlankPdf(2), fileName: "scan.pdf" });
    expect(error.reason).toBe("EMPTY_DOCUMENT");
    expect(error.message).toMatch(/no extractable text/);
  });

  it("a damaged PDF is refused with a short message, not the library's", async () => {
    const error = await refusal({ bytes: await makeCorruptPdf(), fileName: "abime.pdf" });
    expect(error.reason).toBe("CORRUPT_DOCUMENT");
    expect(error.message).toBe("The PDF is damaged or truncated and cannot be read.");
    const valid = await makePdf(["Texte complet."]);
    const truncated = await refusal({ bytes: valid.slice(0, valid.length - 300) });
    expect(truncated.reason).toBe("CORRUPT_DOCUMENT");
  });

  it("reads a PDF with junk before its header", async () => {
    const bytes = new Uint8Array([...utf8("junk\r\n"), ...(await makePdf([ACCENTS]))]);
    expect((await pool.parse({ bytes, fileName: "a.pdf" })).documents[0]?.text).toBe(ACCENTS);
  });

  it("a PDF named .txt is still read as a PDF", async () => {
    const parsed = await pool.parse({ bytes: await makePdf([ACCENTS]), fileName: "notes.txt" });
    expect(parsed.format).toBe("pdf");
    expect(parsed.documents[0]?.text).toBe(ACCENTS);
  });
});

describe("DOCX", () => {
  it("comes out as Markdown, Word headings as # headings, the first one as title", async () => {
    const bytes = await makeDocx([
      { heading: "Titre du document", text: ACCENTS },
      { heading: "Deuxième partie", text: "Fin." },
    ]);
    const parsed = await pool.parse({ bytes, fileName: "note.docx" });
    expect(parsed.format).toBe("docx");
    expect(parsed.documents).toEqual([
      {
        title: "Titre du document",
        text: `# Titre du document\n\n${ACCENTS}\n\n# Deuxième partie\n\nFin.`,
        metadata: {},
      },
    ]);
  });

  it("images leave their alt text, no base64", async () => {
    const bytes = await makeDocx([{ text: "Après l'image.", image: true }]);
    const [doc] = (await pool.parse({ bytes })).documents;
    expect(doc?.text).toBe("Logo\n\nAprès l'image.");
    expect(doc?.title).toBeNull();
  });

  it("a truncated .docx is refused as damaged", async () => {
    const error = await refusal({ bytes: await makeCorruptDocx(), fileName: "lettre.docx" });
    expect(error.reason).toBe("CORRUPT_DOCUMENT");
  });
});

describe("HTML", () => {
  const long = (s: string) => `${s} ${"Les analyses montrent une amélioration régulière de la qualité. ".repeat(5)}`;

  it("keeps the article and drops navigation, footer and scripts", async () => {
    const bytes = makeHtml({
      title: "La qualité de l'eau",
      heading: "Résumé",
      paragraphs: [long("Première partie."), long("Seconde partie.")],
      boilerplate: true,
    });
    const parsed = await pool.parse({ bytes, fileName: "page.html" });
    expect(parsed).toMatchObject({ format: "html", mime: "text/html" });
    const [doc] = parsed.documents;
    expect(doc?.title).toBe("La qualité de l'eau");
    expect(doc?.metadata).toEqual({ lang: "fr" });
    expect(doc?.text).toMatch(/^## Résumé\n\nPremière partie\. Les analyses/);
    expect(doc?.text).toContain("\n\nSeconde partie.");
    for (const noise of ["Accueil", "Mentions légales", "ne pas indexer"]) expect(doc?.text).not.toContain(noise);
  });

  it("keeps the whole body of a short page, still without scripts", async () => {
    const bytes = makeHtml({ title: "Court", paragraphs: ["Une seule phrase à garder."], boilerplate: true });
    const [doc] = (await pool.parse({ bytes })).documents;
    expect(doc?.title).toBe("Court");
    expect(doc?.text).toContain("Une seule phrase à garder.");
    expect(doc?.text).not.toContain("ne pas indexer");
  });

  it("reads fragments and pages without a body tag", async () => {
    const fragment = utf8("<h1>Liste</h1><ul><li>un</li><li>deux</li></ul><p>Texte <b>gras</b> &amp; fin.</p>");
    const [doc] = (await pool.parse({ bytes: fragment, fileName: "fragment.html" })).documents;
    expect(doc).toEqual({ title: null, text: "# Liste\n\n-   un\n-   deux\n\nTexte **gras** & fin.", metadata: {} });
    const noBody = utf8("<html><head><title>Sans body</title></head><p>Contenu.</p></html>");
    expect((await pool.parse({ bytes: noBody, fileName: "x.htm" })).documents).toEqual([
      { title: "Sans body", text: "Contenu.", metadata: {} },
    ]);
  });

  it("a page with no text is empty", async () => {
    const error = await refusal({ bytes: utf8("<html><body><img src='a.png'></body></html>"), fileName: "a.html" });
    expect(error.reason).toBe("EMPTY_DOCUMENT");
  });
});

describe("Markdown and plain text", () => {
  it("are kept as they are (line endings normalised), Markdown titled by its first # heading", async () => {
    const md = utf8(`Préambule\r\n\r\n# Le titre #\r\n\r\n${ACCENTS}\r\n`);
    expect(await pool.parse({ bytes: md, fileName: "LISEZMOI.md" })).toEqual({
      format: "markdown",
      mime: "text/markdown",
      documents: [{ title: "Le titre", text: `Préambule\n\n# Le titre #\n\n${ACCENTS}`, metadata: {} }],
    });
    const [doc] = (await pool.parse({ bytes: utf8(ACCENTS), fileName: "a.txt" })).documents;
    expect(doc).toEqual({ title: null, text: ACCENTS, metadata: {} });
  });

  it("Latin-1 text keeps its accents", async () => {
    const text = "Ça coûte cinq écus à l'été, dit l'aïeul.";
    const [doc] = (await pool.parse({ bytes: latin1(text), fileName: "vieux.txt" })).documents;
    expect(doc?.text).toBe(text);
  });

  it("whitespace only is empty", async () => {
    expect((await refusal({ bytes: utf8(" \n\t\n "), fileName: "blanc.md" })).reason).toBe("EMPTY_DOCUMENT");
    expect((await refusal({ bytes: new Uint8Array(0) })).reason).toBe("EMPTY_DOCUMENT");
  });

  it("binary content named .txt is refused", async () => {
    const bytes = new Uint8Array([0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x00]);
    expect((await refusal({ bytes, fileName: "a.txt" })).reason).toBe("UNSUPPORTED_FILE_TYPE");
  });
});

describe("JSON arrays", () => {
  it("give one document per item, with title and metadata", async () => {
    const bytes = makeJsonDocuments([
      { text: ACCENTS, title: " Eau ", metadata: { source: "ars", year: 2024, public: true } },
      { text: "Deuxième.", extra: "ignored" },
      { text: "Troisième.", title: null, metadata: null },
    ]);
    expect(await pool.parse({ bytes, fileName: "docs.json" })).toEqual({
      format: "json",
      mime: "application/json",
      documents: [
        { title: "Eau", text: ACCENTS, metadata: { source: "ars", year: 2024, public: true } },
        { title: null, text: "Deuxième.", metadata: {} },
        { title: null, text: "Troisième.", metadata: {} },
      ],
    });
  });

  it("refuse a bad item with its index", async () => {
    const cases: [unknown[], string][] = [
      [[{ text: "ok" }, { title: "sans texte" }], "Item 1: `text` must be a non-empty string."],
      [[{ text: "ok" }, { text: "  " }], "Item 1: `text` must be a non-empty string."],
      [["juste une chaîne"], "Item 0: must be an object."],
      [[{ text: "a", title: 3 }], "Item 0: `title` must be a string."],
      [[{ text: "a", metadata: [] }], "Item 0: `metadata` must be an object."],
      [
        [{ text: "a" }, { text: "b" }, { text: "c", metadata: { n: { deep: 1 } } }],
        'Item 2: metadata "n" must be a string, a number or a boolean.',
      ],
    ];
    for (const [items, message] of cases) {
      const error = await refusal({ bytes: makeJsonDocuments(items), fileName: "docs.json" });
      expect({ reason: error.reason, message: error.message }).toEqual({ reason: "INVALID_JSON_DOCUMENT", message });
    }
  });

  it("refuse what is not an array of documents", async () => {
    const object = await refusal({ bytes: utf8('{"text": "a"}'), declaredMime: "application/json" });
    expect(object.reason).toBe("INVALID_JSON_DOCUMENT");
    const syntax = await refusal({ bytes: utf8("[{"), fileName: "x.json" });
    expect(syntax.reason).toBe("INVALID_JSON_DOCUMENT");
    expect(syntax.message).toMatch(/^The file is not valid JSON: /);
    expect((await refusal({ bytes: utf8("[]"), fileName: "x.json" })).reason).toBe("EMPTY_DOCUMENT");
  });
});
