import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createCanvas } from "@napi-rs/canvas";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OcrService } from "../../gen/passerelle/ocr/v1/ocr_service_pb.js";
import { DEFAULT_OCR_PROMPT } from "../../services/ocr/index.js";
import { makeCorruptPdf, makeDocx } from "../fixtures/documents.js";
import { expectOpenAIError } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { countChatPromptTokens } from "../upstream/text.js";
import { shortHash, visionMarkdown } from "../upstream/vision.js";

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the assertions, not by types
type Json = any;

/** Pages of distinct sizes (points), so that each page's Markdown names the size of its own rendering. */
const PAGE_SIZES: [number, number][] = [
  [200, 300],
  [300, 200],
  [250, 250],
];
const DPI = 150;
const MAX_FILE_BYTES = 200_000;

async function threePagePdf(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  PAGE_SIZES.forEach(([w, h], i) => {
    pdf.addPage([w, h]).drawText(`Page ${i}`, { x: 20, y: h - 40, size: 18, font });
  });
  return pdf.save();
}

async function png(width: number, height: number): Promise<Buffer> {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = "black";
  ctx.fillText("Bonjour", 4, 14);
  return canvas.encode("png");
}

const dataUrl = (bytes: Uint8Array, mime: string) => `data:${mime};base64,${Buffer.from(bytes).toString("base64")}`;
const pdfDocument = (bytes: Uint8Array) => ({ type: "document_url", document_url: dataUrl(bytes, "application/pdf") });

/** The simulator's counts for one page: the instruction and one image (85), and its Markdown (6 characters a token). */
const promptTokensPerPage = countChatPromptTokens([{ role: "user", content: DEFAULT_OCR_PROMPT }]) + 85;
const completionTokensOf = (markdown: string) => Math.ceil(markdown.length / 6);

/**
 * OCR end to end over plain HTTP (and one RPC over connect-node): REST bridge → OcrService → PDF pages rendered in
 * worker threads → one chat completion per page with the page image → the vLLM simulator, which answers Markdown
 * read from the image it received (its size and hash), so each page's answer is traced to its own rendering.
 */
describe("ocr", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let pdf: Uint8Array;

  const post = (body: unknown, key = t.adminKey) =>
    fetch(`${t.httpUrl}/v1/ocr`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const ocr = async (body: unknown): Promise<Json> => {
    const res = await post(body);
    const json = await res.json();
    expect(res.status, JSON.stringify(json)).toBe(200);
    return json;
  };
  const upstreamCalls = () => sim.stats.requests["/v1/chat/completions"] ?? 0;

  beforeAll(async () => {
    sim = await startSimulator();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-ocr-"));
    const file = path.join(dir, "models.yaml");
    const provider = `      - { type: vllm, url: "${sim.url}", model_name: sim-chat, timeout_s: 30 }`;
    await fs.writeFile(
      file,
      ["models:", "  - name: qwen-vl", "    aliases: [ocr-default]", "    type: image-text-to-text", "    providers:"]
        .concat(provider, "  - name: qwen-chat", "    type: text-generation", "    providers:", provider, "")
        .join("\n"),
    );
    t = await startTestPlatform({
      env: {
        PASSERELLE_MODELS_FILE: file,
        PASSERELLE_RAG_MAX_FILE_BYTES: String(MAX_FILE_BYTES),
        PASSERELLE_OCR_DPI: String(DPI),
        PASSERELLE_OCR_MAX_PAGES: "3",
        PASSERELLE_BODY_LIMIT_BYTES: "65536",
      },
    });
    pdf = await threePagePdf();
  });
  beforeEach(() => sim.reset());
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("transcribes every page of a PDF in order, each page's Markdown read from its own rendering", async () => {
    const body = await ocr({ model: "ocr-default", document: pdfDocument(pdf) });
    expect(Object.keys(body).sort()).toEqual(["id", "model", "object", "pages", "usage", "usage_info"]);
    expect(body.id).toMatch(/^ocr-[0-9a-f]{32}$/);
    expect(body.model).toBe("ocr-default");
    expect(body.pages.map((p: Json) => p.index)).toEqual([0, 1, 2]);
    const hashes = new Set<string>();
    body.pages.forEach((p: Json, i: number) => {
      const [w, h] = PAGE_SIZES[i] as [number, number];
      const { width, height, dpi } = p.dimensions;
      expect(dpi).toBe(DPI);
      expect(Math.abs(width - (w * DPI) / 72)).toBeLessThanOrEqual(1);
      expect(Math.abs(height - (h * DPI) / 72)).toBeLessThanOrEqual(1);
      expect(p.images).toEqual([]);
      const m = /^# Page\n\nImage image\/png, (\d+)x(\d+) px, sha256 ([0-9a-f]{12})\.$/.exec(p.markdown);
      expect(m, p.markdown).not.toBeNull();
      expect([Number(m?.[1]), Number(m?.[2])]).toEqual([width, height]);
      hashes.add(m?.[3] as string);
    });
    expect(hashes.size).toBe(3);
    expect(upstreamCalls()).toBe(3);
    expect(body.usage_info).toEqual({ pages_processed: 3, doc_size_bytes: pdf.length });
    const completion = body.pages.reduce((s: number, p: Json) => s + completionTokensOf(p.markdown), 0);
    expect(body.usage).toMatchObject({
      prompt_tokens: 3 * promptTokensPerPage,
      completion_tokens: completion,
      total_tokens: 3 * promptTokensPerPage + completion,
      cost: 0,
    });
  });

  it("sends each page as a user message of the instruction and a PNG data URL, without streaming", async () => {
    await ocr({ model: "qwen-vl", document: pdfDocument(pdf), pages: [1] });
    const sent = sim.stats.lastRequest["/v1/chat/completions"] as Json;
    expect(sent.model).toBe("sim-chat");
    expect(sent.stream).toBeUndefined();
    expect(sent.messages).toHaveLength(1);
    const [text, image] = sent.messages[0].content;
    expect(text).toEqual({ type: "text", text: DEFAULT_OCR_PROMPT });
    expect(image.type).toBe("image_url");
    expect(image.image_url.url).toMatch(/^data:image\/png;base64,/);
  });

  it("transcribes only the selected pages, in document order, once each", async () => {
    const body = await ocr({ model: "qwen-vl", document: pdfDocument(pdf), pages: [2, 0, 2] });
    expect(body.pages.map((p: Json) => p.index)).toEqual([0, 2]);
    expect(body.pages[1].dimensions.width).toBe(body.pages[1].dimensions.height);
    expect(upstreamCalls()).toBe(2);
    expect(body.usage_info.pages_processed).toBe(2);
  });

  it("transcribes a PNG image as page 0, sending the client's bytes as they are", async () => {
    const image = await png(120, 80);
    const body = await ocr({
      model: "qwen-vl",
      document: { type: "image_url", image_url: dataUrl(image, "image/png") },
    });
    expect(body.pages).toHaveLength(1);
    expect(body.pages[0]).toMatchObject({ index: 0, dimensions: { dpi: 0, width: 120, height: 80 } });
    expect(body.pages[0].markdown).toBe(visionMarkdown([{ mime: "image/png", bytes: image }]));
    expect(body.pages[0].markdown).toContain(shortHash(image));
    expect(body.usage_info.doc_size_bytes).toBe(image.length);
  });

  it("refuses bad documents with 400 before any upstream call", async () => {
    const docx = await makeDocx([{ text: "Bonjour" }]);
    const cases: [unknown, string, string][] = [
      [pdfDocument(await makeCorruptPdf()), "corrupt_document", "document.document_url"],
      [
        { type: "document_url", document_url: dataUrl(docx, "application/octet-stream") },
        "unsupported_file_type",
        "document.document_url",
      ],
      [
        { type: "document_url", document_url: "data:application/pdf;base64,@@@not-base64@@@" },
        "invalid_document_url",
        "document.document_url",
      ],
      [
        { type: "document_url", document_url: "https://example.org/report.pdf" },
        "document_url_not_allowed",
        "document.document_url",
      ],
      [
        { type: "image_url", image_url: "http://169.254.169.254/latest/meta-data" },
        "document_url_not_allowed",
        "document.image_url",
      ],
      [{ type: "file", file: "x" }, "invalid_value", "document.type"],
      [
        { type: "image_url", image_url: dataUrl((await png(10, 10)).subarray(0, 16), "image/png") },
        "corrupt_document",
        "document.image_url",
      ],
    ];
    for (const [document, code, param] of cases) {
      const e = await expectOpenAIError(await post({ model: "qwen-vl", document }), 400, "invalid_request_error");
      expect(e.error, JSON.stringify(document).slice(0, 80)).toMatchObject({ code, param });
    }
    const outside = await expectOpenAIError(
      await post({ model: "qwen-vl", document: pdfDocument(pdf), pages: [0, 3] }),
      400,
      "invalid_request_error",
    );
    expect(outside.error).toMatchObject({ code: "page_out_of_range", param: "pages" });
    expect(outside.error.message).toContain("3 pages");
    expect(upstreamCalls()).toBe(0);
  });

  it("caps the pages of one request (PASSERELLE_OCR_MAX_PAGES)", async () => {
    const big = await PDFDocument.create();
    for (let i = 0; i < 4; i++) big.addPage([100, 100]);
    const e = await expectOpenAIError(
      await post({ model: "qwen-vl", document: pdfDocument(await big.save()) }),
      400,
      "invalid_request_error",
    );
    expect(e.error).toMatchObject({ code: "too_many_pages", param: "pages" });
    // Selecting few enough pages of it is fine.
    expect((await ocr({ model: "qwen-vl", document: pdfDocument(await big.save()), pages: [3] })).pages).toHaveLength(
      1,
    );
  });

  it("answers 413 for a document over the upload limit, though the body is over the general body limit too", async () => {
    const huge = new Uint8Array(MAX_FILE_BYTES + 1).fill(7);
    huge.set(pdf.subarray(0, 8));
    const e = await expectOpenAIError(await post({ model: "qwen-vl", document: pdfDocument(huge) }), 413);
    expect(e.error).toMatchObject({ code: "file_too_large", param: "document.document_url" });
    // A body far beyond what a document of the limit takes is cut by the route's own body limit.
    const flood = {
      model: "qwen-vl",
      document: { type: "document_url", document_url: `data:;base64,${"A".repeat(400_000)}` },
    };
    await expectOpenAIError(await post(flood), 413);
    expect(upstreamCalls()).toBe(0);
  });

  it("answers 400 for a model of another type and 404 for an unknown model", async () => {
    const wrong = await expectOpenAIError(await post({ model: "qwen-chat", document: pdfDocument(pdf) }), 400);
    expect(wrong.error).toMatchObject({ code: "wrong_model_type", param: "model" });
    await expectOpenAIError(
      await post({ model: "no-such-model", document: pdfDocument(pdf) }),
      404,
      "invalid_request_error",
    );
    const unsupported = await expectOpenAIError(
      await post({ model: "qwen-vl", document: pdfDocument(pdf), document_annotation_format: { type: "json_schema" } }),
      400,
    );
    expect(unsupported.error.param).toBe("document_annotation_format");
    // Beyond OpenAI's uint32 bound, `max_tokens` is refused (it would overflow the admission's token estimate).
    const huge = await expectOpenAIError(
      await post({ model: "qwen-vl", document: pdfDocument(pdf), max_tokens: 1e20 }),
      400,
      "invalid_request_error",
    );
    expect(huge.error.param).toBe("max_tokens");
    expect(upstreamCalls()).toBe(0);
  });

  it("fails the whole request when a page fails upstream", async () => {
    sim.setOptions({ failureRate: 1, failureStatus: 400 });
    await expectOpenAIError(await post({ model: "qwen-vl", document: pdfDocument(pdf) }), 400);
  });

  it("serves the RPC to connect-node, with the document as bytes", async () => {
    const client = createClient(OcrService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${t.adminKey}` };
    const res = await client.processDocument(
      {
        model: "qwen-vl",
        document: { case: "content", value: { data: pdf, mimeType: "application/pdf" } },
        pages: [1],
      },
      { headers },
    );
    expect(res.pages.map((p) => p.index)).toEqual([1]);
    expect(res.pages[0]?.markdown).toMatch(/^# Page\n\nImage image\/png, \d+x\d+ px/);
    expect(res.usageInfo?.docSizeBytes).toBe(BigInt(pdf.length));
    expect(res.usage?.promptTokens).toBe(promptTokensPerPage);
    const err = await client
      .processDocument(
        { model: "qwen-vl", document: { case: "content", value: { data: new Uint8Array(MAX_FILE_BYTES + 1) } } },
        { headers },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toContain(`${MAX_FILE_BYTES} bytes`);
  });

  it("records one usage record per request under the endpoint 'ocr', with the summed tokens", async () => {
    const body = await ocr({ model: "qwen-vl", document: pdfDocument(pdf), pages: [0, 1], user: "usage-check" });
    let records: Json[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${t.httpUrl}/v1/me/usage?endpoint=ocr&limit=100`, {
        headers: { authorization: `Bearer ${t.adminKey}` },
      });
      records = ((await res.json()) as Json).data;
      const done = records.some((r) => r.status === 200 && r.prompt_tokens === 2 * promptTokensPerPage);
      if (done && records.some((r) => r.status === 400)) break;
      await sleep(50);
    }
    const mine = records.filter((r) => r.status === 200 && r.prompt_tokens === 2 * promptTokensPerPage);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine[0]).toMatchObject({
      endpoint: "ocr",
      model: "qwen-vl",
      completion_tokens: body.usage.completion_tokens,
      total_tokens: body.usage.total_tokens,
    });
    // The failed request of the test above has its record too, with the upstream's status.
    expect(
      records.some((r) => r.status === 400),
      JSON.stringify(records.map((r) => [r.status, r.error_code])),
    ).toBe(true);
    expect(records.every((r) => r.endpoint === "ocr")).toBe(true);
  });
});
