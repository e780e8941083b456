import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  type ProcessDocumentRequest,
  ProcessDocumentRequestSchema,
  type ProcessDocumentResponse,
} from "../../gen/passerelle/ocr/v1/ocr_service_pb.js";
import { InvalidRequest } from "./invalid-request.js";
import { impactJson } from "./usage.js";

/**
 * Pure translations between Mistral's OCR JSON (`POST /v1/ocr`, which the reference system also follows) and the
 * OCR protos. The gateway reads the document itself (PDF pages rendered to images, each transcribed by a vision chat
 * model): Mistral's image extraction and annotation features have no counterpart.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Mistral fields that only tune image extraction, which the gateway does not do: accepted, without effect. */
const IGNORED = new Set(["id", "image_limit", "image_min_size"]);
/** Mistral features the gateway cannot honour: refused rather than silently dropped. */
const UNSUPPORTED = new Set(["bbox_annotation_format", "document_annotation_format"]);
const KNOWN = new Set(["model", "document", "pages", "include_image_base64", "prompt", "user"]);

function documentOf(v: unknown): ProcessDocumentRequest["document"] {
  if (!isObject(v)) {
    throw new InvalidRequest(
      "'document' must be an object: {type: 'document_url', document_url} or {type: 'image_url', image_url}.",
      "document",
    );
  }
  if (v.type === "document_url") {
    if (typeof v.document_url !== "string" || v.document_url === "") {
      throw new InvalidRequest("'document.document_url' must be a non-empty string.", "document.document_url");
    }
    return { case: "documentUrl", value: v.document_url };
  }
  if (v.type === "image_url") {
    // A string, or OpenAI's {url, detail} object as Mistral also accepts.
    const url = isObject(v.image_url) ? v.image_url.url : v.image_url;
    if (typeof url !== "string" || url === "") {
      throw new InvalidRequest("'document.image_url' must be a non-empty string.", "document.image_url");
    }
    return { case: "imageUrl", value: url };
  }
  throw new InvalidRequest("'document.type' must be 'document_url' or 'image_url'.", "document.type");
}

function pagesOf(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((p, i) => {
    if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > 0xffffffff) {
      throw new InvalidRequest(`'pages[${i}]' must be a page number from 0.`, "pages");
    }
    return p;
  });
}

/** Reads a Mistral OCR request body. Throws InvalidRequest (400 with `param`) for what cannot be read. */
export function ocrRequestFromJson(body: unknown): ProcessDocumentRequest {
  if (!isObject(body)) throw new InvalidRequest("The request body must be a JSON object.", "body");
  if (typeof body.model !== "string" || !body.model) {
    throw new InvalidRequest("'model' must be a non-empty string.", "model");
  }
  const req = create(ProcessDocumentRequestSchema, { model: body.model, document: documentOf(body.document) });
  if (body.pages != null) req.pages = pagesOf(body.pages);
  if (body.include_image_base64 != null) {
    if (typeof body.include_image_base64 !== "boolean") {
      throw new InvalidRequest("'include_image_base64' must be a boolean.", "include_image_base64");
    }
    req.includeImageBase64 = body.include_image_base64;
  }
  for (const k of ["prompt", "user"] as const) {
    const v = body[k];
    if (v == null) continue;
    if (typeof v !== "string") throw new InvalidRequest(`'${k}' must be a string.`, k);
    req[k] = v;
  }
  for (const [k, v] of Object.entries(body)) {
    if (KNOWN.has(k) || IGNORED.has(k) || v == null) continue;
    if (UNSUPPORTED.has(k)) throw new InvalidRequest(`'${k}' is not supported by this gateway.`, k);
    // Vendor extras (temperature, max_tokens, …) go to each page's chat completion.
    req.extra ??= {};
    (req.extra as JsonObject)[k] = v as JsonValue;
  }
  return req;
}

/** The answer in Mistral's `OCRResponse` shape, plus the gateway's `usage` (tokens, cost, carbon). */
export function ocrResponseJson(res: ProcessDocumentResponse): JsonObject {
  const u = res.usage;
  return {
    id: res.id,
    object: "ocr",
    model: res.model,
    pages: res.pages.map((p) => ({
      index: p.index,
      markdown: p.markdown,
      images: [],
      dimensions: { dpi: p.dimensions?.dpi ?? 0, height: p.dimensions?.height ?? 0, width: p.dimensions?.width ?? 0 },
    })),
    usage_info: {
      pages_processed: res.usageInfo?.pagesProcessed ?? 0,
      doc_size_bytes: Number(res.usageInfo?.docSizeBytes ?? 0n),
    },
    usage: {
      prompt_tokens: u?.promptTokens ?? 0,
      completion_tokens: u?.completionTokens ?? 0,
      total_tokens: u?.totalTokens ?? 0,
      ...(u ? impactJson(u) : {}),
    },
  };
}
