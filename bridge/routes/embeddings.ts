import type { FastifyInstance } from "fastify";
import { embeddingsRequestFromJson, embeddingsResponseJson } from "../openai/embeddings.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";

/** `POST /v1/embeddings` (OpenAI-compatible), translated to EmbeddingsService.CreateEmbeddings. */
export function embeddingsRoutes(app: FastifyInstance, clients: Clients): void {
  app.post(
    "/v1/embeddings",
    {
      schema: {
        tags: ["inference"],
        summary:
          "Creates embeddings (OpenAI-compatible): input as a string, strings, token ids or token-id lists; " +
          "`encoding_format` float or base64; large inputs are batched upstream. Unknown fields are forwarded.",
        security: [{ bearer: [] }],
        body: {
          type: "object",
          required: ["model", "input"],
          properties: {
            model: { type: "string" },
            input: {
              description: "A string, an array of strings, an array of token ids, or an array of token-id arrays.",
            },
            dimensions: { type: "integer", minimum: 1 },
            encoding_format: { type: "string", enum: ["float", "base64"] },
            user: { type: "string" },
          },
          additionalProperties: true,
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const request = embeddingsRequestFromJson(req.body);
      const res = await clients.embeddings.createEmbeddings(request, callOptions(req, reply));
      return reply.send(embeddingsResponseJson(res, request.encodingFormat));
    },
  );
}
