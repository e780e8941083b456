import type { FastifyInstance } from "fastify";
import { rerankRequestFromJson, rerankResponseJson } from "../openai/rerank.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";
import { rerankBodySchema, rerankResponseSchema } from "../schemas/rerank.js";

/** `POST /v1/rerank` (Cohere's shape, as the reference system), translated to RerankService.Rerank. */
export function rerankRoutes(app: FastifyInstance, clients: Clients): void {
  app.post(
    "/v1/rerank",
    {
      schema: {
        tags: ["inference"],
        summary:
          "Ranks documents by relevance to a query with a `text-classification` model (Cohere-compatible): results " +
          "sorted by `relevance_score`, cut to `top_n`. Unknown fields are forwarded to the upstream. One usage " +
          "record per request (endpoint `rerank`).",
        security: [{ bearer: [] }],
        body: rerankBodySchema,
        response: { 200: rerankResponseSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const request = rerankRequestFromJson(req.body);
      const res = await clients.rerank.rerank(request, callOptions(req, reply));
      return reply.send(rerankResponseJson(res));
    },
  );
}
