import type { FastifyInstance } from "fastify";
import { inRestTerms } from "../mappers/collections.js";
import { ocrRequestFromJson, ocrResponseJson } from "../openai/ocr.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";

/** Room for the JSON around the document: the data URL's header, the model name, the other fields. */
const ENVELOPE_BYTES = 64 * 1024;

/**
 * `POST /v1/ocr` (Mistral's OCR API), translated to OcrService.ProcessDocument. The document travels base64-encoded
 * in the JSON body, so the route admits a body a third larger than the platform's upload limit; the limit itself is
 * the core's, checked on the decoded bytes (413 `file_too_large`).
 */
export function ocrRoutes(app: FastifyInstance, clients: Clients, opts: { maxFileBytes: number }): void {
  const needed = Math.ceil(opts.maxFileBytes / 3) * 4 + ENVELOPE_BYTES;
  app.post(
    "/v1/ocr",
    {
      bodyLimit: Math.max(app.initialConfig.bodyLimit ?? 0, needed),
      schema: {
        tags: ["inference"],
        summary:
          "Transcribes a PDF (each page rendered to an image) or a PNG, JPEG or WebP image to Markdown, page by " +
          "page, with an `image-text-to-text` model (Mistral's OCR shape). Documents as base64 `data:` URLs; http(s) " +
          "URLs only under the operator's allow-list. `pages` selects pages (from 0). Billed like chat, one usage " +
          "record per request (endpoint `ocr`).",
        security: [{ bearer: [] }],
        body: {
          type: "object",
          required: ["model", "document"],
          properties: {
            model: { type: "string" },
            document: {
              type: "object",
              description:
                "{type: 'document_url', document_url: 'data:application/pdf;base64,…'} or {type: 'image_url', " +
                "image_url: 'data:image/png;base64,…'}",
            },
            pages: { description: "Page numbers from 0 (a number or a list); all pages when absent." },
            include_image_base64: { type: "boolean", description: "Accepted; images are not extracted." },
            prompt: { type: "string", description: "Replaces the gateway's transcription instruction." },
            user: { type: "string" },
          },
          additionalProperties: true,
        },
        response: { ...errorResponses, 413: { $ref: "Error#" } },
      },
    },
    async (req, reply) => {
      const request = ocrRequestFromJson(req.body);
      try {
        return reply.send(ocrResponseJson(await clients.ocr.processDocument(request, callOptions(req, reply))));
      } catch (err) {
        throw inRestTerms(err, { document_url: "document.document_url", image_url: "document.image_url" });
      }
    },
  );
}
