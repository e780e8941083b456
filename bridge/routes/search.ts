import type { FastifyInstance } from "fastify";
import { inRestTerms, type SearchJson, searchRequestToProto, searchResponseJson } from "../mappers/collections.js";
import { type Clients, callOptions } from "../rpc.js";
import { searchBody, searchResponseSchema } from "../schemas/collections.js";
import { errorResponses } from "../schemas/common.js";

/**
 * `POST /v1/search` (SearchService.Search): the chunks closest to a query among the collections the caller may read
 * (theirs and the public ones). Naming a collection the caller may not read answers 404. The reference system's
 * aliases are accepted: `prompt`, `collections`, `metadata_filters`, `rff_k`.
 */
export function searchRoutes(app: FastifyInstance, clients: Clients): void {
  app.post<{ Body: SearchJson }>(
    "/v1/search",
    {
      schema: {
        tags: ["search"],
        security: [{ bearer: [] }],
        summary:
          "Searches chunks semantically (embeddings), lexically (full text) or both (hybrid, reciprocal rank " +
          "fusion), with OpenAI's metadata filter grammar. The query's embedding is billed like /v1/embeddings.",
        body: searchBody,
        response: { 200: searchResponseSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const request = searchRequestToProto(req.body);
      try {
        return searchResponseJson(await clients.search.search(request, callOptions(req, reply)));
      } catch (err) {
        // The RPC's `filter` is the body's `filters`, or its alias when that was sent.
        throw inRestTerms(err, { filter: req.body.metadata_filters === undefined ? "filters" : "metadata_filters" });
      }
    },
  );
}
