/** JSON schemas of `POST /v1/rerank` (Cohere's shape); the answer is serialized through them: list every field. */

const range = {
  type: "object",
  properties: { min: { type: "number" }, max: { type: "number" } },
  required: ["min", "max"],
} as const;

export const rerankBodySchema = {
  type: "object",
  required: ["model", "query", "documents"],
  properties: {
    model: { type: "string", description: "A `text-classification` model (name or alias)." },
    query: { type: "string", description: "What the documents are ranked against." },
    documents: {
      type: "array",
      minItems: 1,
      description: "The documents to rank: strings, or Cohere's `{text}` objects.",
      items: {
        anyOf: [
          { type: "string" },
          { type: "object", required: ["text"], properties: { text: { type: "string" } }, additionalProperties: true },
        ],
      },
    },
    top_n: {
      type: "integer",
      minimum: 1,
      description: "How many of the best results to answer; all when absent or larger than the list.",
    },
    return_documents: { type: "boolean", description: "Echo each result's document as `document: {text}`." },
    user: { type: "string" },
  },
  additionalProperties: true,
} as const;

export const rerankResponseSchema = {
  type: "object",
  description: "The results, most relevant first (ties in document order), at most `top_n`.",
  properties: {
    object: { type: "string", enum: ["list"] },
    id: { type: "string", description: "The request's id (its usage record's)." },
    model: { type: "string", description: "The model as the request named it." },
    results: {
      type: "array",
      items: {
        type: "object",
        properties: {
          index: { type: "integer", description: "Position of the document in the request." },
          relevance_score: { type: "number" },
          document: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
        },
        required: ["index", "relevance_score"],
      },
    },
    usage: {
      type: "object",
      properties: {
        prompt_tokens: { type: "integer" },
        total_tokens: { type: "integer" },
        cost: { type: "number", description: "What the request cost, in the currency of the model's prices." },
        carbon: {
          type: "object",
          description: "Estimated energy (kWh) and emissions (kg CO2 eq.).",
          properties: { kWh: range, kgCO2eq: range },
          required: ["kWh", "kgCO2eq"],
        },
      },
      required: ["prompt_tokens", "total_tokens"],
    },
  },
  required: ["object", "id", "model", "results", "usage"],
} as const;
