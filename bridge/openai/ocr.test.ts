import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProcessDocumentResponseSchema } from "../../gen/passerelle/ocr/v1/ocr_service_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { ocrRequestFromJson, ocrResponseJson } from "./ocr.js";

const PDF = "data:application/pdf;base64,JVBERi0=";

function refusal(body: unknown): { message: string; param: string } {
  try {
    ocrRequestFromJson(body);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidRequest);
    return { message: (e as InvalidRequest).message, param: (e as InvalidRequest).param };
  }
  throw new Error("expected a refusal");
}

describe("Mistral OCR requests", () => {
  it("reads both document kinds, page selections, and keeps vendor extras", () => {
    const req = ocrRequestFromJson({
      model: "m",
      document: { type: "document_url", document_url: PDF, document_name: "x.pdf" },
      pages: [2, 0],
      include_image_base64: true,
      image_limit: 3,
      prompt: "Lis.",
      temperature: 0,
    });
    expect(req.document).toEqual({ case: "documentUrl", value: PDF });
    expect(req.pages).toEqual([2, 0]);
    expect(req.includeImageBase64).toBe(true);
    expect(req.prompt).toBe("Lis.");
    expect(req.extra).toEqual({ temperature: 0 });
    const img = ocrRequestFromJson({
      model: "m",
      document: { type: "image_url", image_url: { url: "data:x" } },
      pages: 0,
    });
    expect(img.document).toEqual({ case: "imageUrl", value: "data:x" });
    expect(img.pages).toEqual([0]);
  });

  it("refuses malformed documents and pages, and the annotation features it cannot honour", () => {
    expect(refusal({ model: "m" }).param).toBe("document");
    expect(refusal({ model: "m", document: { type: "file", file: "x" } }).param).toBe("document.type");
    expect(refusal({ model: "m", document: { type: "document_url" } }).param).toBe("document.document_url");
    expect(refusal({ model: "m", document: { type: "image_url", image_url: 3 } }).param).toBe("document.image_url");
    expect(refusal({ model: "m", document: { type: "document_url", document_url: PDF }, pages: [-1] }).param).toBe(
      "pages",
    );
    expect(refusal({ model: "m", document: { type: "document_url", document_url: PDF }, pages: ["1"] }).param).toBe(
      "pages",
    );
    const bbox = refusal({
      model: "m",
      document: { type: "document_url", document_url: PDF },
      bbox_annotation_format: {},
    });
    expect(bbox.param).toBe("bbox_annotation_format");
    expect(refusal({ document: { type: "document_url", document_url: PDF } }).param).toBe("model");
  });
});

describe("Mistral OCR responses", () => {
  it("writes pages with empty images, usage_info and the gateway's usage", () => {
    const res = create(ProcessDocumentResponseSchema, {
      id: "ocr-1",
      model: "m",
      pages: [{ index: 1, markdown: "# A", dimensions: { dpi: 150, width: 10, height: 20 } }],
      usageInfo: { pagesProcessed: 1, docSizeBytes: 1234n },
      usage: { promptTokens: 5, completionTokens: 2, totalTokens: 7, cost: 0.5 },
    });
    expect(ocrResponseJson(res)).toEqual({
      id: "ocr-1",
      object: "ocr",
      model: "m",
      pages: [{ index: 1, markdown: "# A", images: [], dimensions: { dpi: 150, height: 20, width: 10 } }],
      usage_info: { pages_processed: 1, doc_size_bytes: 1234 },
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, cost: 0.5 },
    });
  });
});
