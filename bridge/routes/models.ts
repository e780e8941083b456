import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { openAIModelJson } from "../mappers/models.js";
import { type Clients, callOptions } from "../rpc.js";
import { errorResponses } from "../schemas/common.js";
import { modelListSchema, modelParams } from "../schemas/models.js";

const tags = ["models"];
const security = [{ bearer: [] }];
/** Pages read for one GET /v1/models (OpenAI's list has no paging): 100 × 100 models at most. */
const MAX_PAGES = 100;

/**
 * `GET /v1/models` and `GET /v1/models/{model}` (by name or alias), as OpenAI answers them, with the registry's
 * extras. Names may contain `/` (`Qwen/Qwen2.5-7B-Instruct`): `{model}` takes one URL-encoded segment, and a
 * hidden wildcard route takes the name as is.
 */
export function modelRoutes(app: FastifyInstance, clients: Clients): void {
  app.get(
    "/v1/models",
    {
      schema: {
        tags,
        security,
        summary: "Lists the models the caller may use.",
        response: { 200: modelListSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const opts = callOptions(req, reply);
      const data: ReturnType<typeof openAIModelJson>[] = [];
      let pageToken = "";
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = await clients.models.listModels({ pageSize: 100, pageToken }, opts);
        data.push(...res.models.map(openAIModelJson));
        pageToken = res.nextPageToken;
        if (!pageToken) break;
      }
      return { object: "list" as const, data };
    },
  );

  const retrieve = async (name: string, req: FastifyRequest, reply: FastifyReply) => {
    const res = await clients.models.getModel({ name }, callOptions(req, reply));
    if (!res.model) throw new Error("GetModel returned no model");
    return openAIModelJson(res.model);
  };
  const one = {
    tags,
    security,
    summary: "Reads a model the caller may use, by name or alias (404 when unknown or not granted).",
    response: { 200: { $ref: "Model#" }, ...errorResponses },
  };

  app.get<{ Params: { model: string } }>(
    "/v1/models/:model",
    { schema: { ...one, params: modelParams } },
    (req, reply) => retrieve(req.params.model, req, reply),
  );
  // `/v1/models/Qwen/Qwen2.5-7B` with the slash left unencoded (OpenAI SDKs send the name as is).
  app.get<{ Params: { "*": string } }>(
    "/v1/models/*",
    {
      schema: {
        ...one,
        hide: true,
        params: {
          type: "object",
          properties: { "*": { type: "string", maxLength: 600 } },
          required: ["*"],
        },
      },
    },
    (req, reply) => retrieve(decodeName(req.params["*"]), req, reply),
  );
}

/** The wildcard's value, percent-decoded once (malformed escapes are kept as sent; the lookup then fails). */
function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
