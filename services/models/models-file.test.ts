import { describe, expect, it } from "vitest";
import { ModelsFileError, parseModelsFile } from "./models-file.js";
import { checkUrl, FieldError } from "./validation.js";

const ISSUE_EXAMPLE = `
models:
  - name: qwen2.5-7b
    aliases: [chat-default]
    type: text-generation
    costs: { prompt_tokens: 0.1, completion_tokens: 0.3 }   # per 1M tokens
    providers:
      - { type: vllm, url: "http://127.0.0.1:8001", key: sk-upstream-secret, model_name: Qwen/Qwen2.5-7B-Instruct,
          timeout_s: 120, max_concurrency: 64, carbon: { zone: FRA, total_params_b: 7.6, active_params_b: 7.6 } }
  - name: bge-m3
    type: text-embeddings-inference
    providers:
      - { type: tei, url: "http://127.0.0.1:8002", model_name: BAAI/bge-m3 }
`;

const parse = (text: string) => parseModelsFile(text, "models.yaml");
const errorOf = (text: string): string => {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ModelsFileError);
    return (err as Error).message;
  }
  throw new Error("expected the file to be refused");
};

describe("models file", () => {
  it("reads the issue's example, with defaults for what it leaves out", () => {
    expect(parse(ISSUE_EXAMPLE)).toEqual([
      {
        name: "qwen2.5-7b",
        aliases: ["chat-default"],
        type: "text-generation",
        costPromptPerMillion: 0.1,
        costCompletionPerMillion: 0.3,
        providers: [
          {
            type: "vllm",
            url: "http://127.0.0.1:8001",
            key: "sk-upstream-secret",
            upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
            timeoutSeconds: 120,
            weight: 1,
            maxConcurrency: 64,
            carbon: { zone: "FRA", totalParamsB: 7.6, activeParamsB: 7.6 },
          },
        ],
      },
      {
        name: "bge-m3",
        aliases: [],
        type: "text-embeddings-inference",
        costPromptPerMillion: 0,
        costCompletionPerMillion: 0,
        providers: [
          {
            type: "tei",
            url: "http://127.0.0.1:8002",
            key: null,
            upstreamModel: "BAAI/bge-m3",
            timeoutSeconds: 300,
            weight: 1,
            maxConcurrency: 0,
            carbon: { zone: "WOR", totalParamsB: 0, activeParamsB: 0 },
          },
        ],
      },
    ]);
  });

  it("accepts an empty file and an empty list", () => {
    expect(parse("")).toEqual([]);
    expect(parse("models: []")).toEqual([]);
  });

  it.each([
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m }\n      - { type: vllm, url: ftp://x, model_name: m }",
      "models.yaml: models[0].providers[1].url must be an http(s) URL",
    ],
    ["models:\n  - type: text-generation", "models.yaml: models[0].name is required"],
    ["models:\n  - name: a", "models.yaml: models[0].type is required"],
    ["models:\n  - name: a\n    type: chat", "models.yaml: models[0].type must be one of text-generation, "],
    [
      "models:\n  - name: 'has space'\n    type: text-generation",
      "models.yaml: models[0].name must be 1–200 characters",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    aliases: [b, '']",
      "models.yaml: models[0].aliases[1] must not be empty",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    aliases: [a]",
      "models.yaml: models[0].aliases[0] repeats the model's name",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n  - name: b\n    aliases: [a]\n    type: text-generation",
      "models.yaml: models[1].aliases[0] 'a' is already used by models[0]",
    ],
    ["models:\n  - name: a\n    type: text-generation\n    cost: 1", "models.yaml: models[0].cost is not a known key"],
    [
      "models:\n  - name: a\n    type: text-generation\n    costs: { prompt_tokens: -1 }",
      "models.yaml: models[0].costs.prompt_tokens must be a number between 0 and 1e9",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: tei, url: http://x, model_name: m }",
      "models.yaml: models[0].providers[0].type cannot be 'tei' for a text-generation model; use vllm or openai",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x }",
      "models.yaml: models[0].providers[0].model_name is required",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x/v1, model_name: m }",
      "models.yaml: models[0].providers[0].url must be the server's base URL, without '/v1'",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m, timeout_s: 0 }",
      "models.yaml: models[0].providers[0].timeout_s must be an integer from 1 to 3600",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m, carbon: { zone: fr } }",
      "models.yaml: models[0].providers[0].carbon.zone must be an ISO 3166-1 alpha-3 country code",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m, carbon: { total_params_b: 1, active_params_b: 2 } }",
      "models.yaml: models[0].providers[0].carbon.active_params_b must not exceed total_params_b",
    ],
    [
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m, key: 12 }",
      "models.yaml: models[0].providers[0].key must be a string",
    ],
    ["model: []", "models.yaml: (root).model is not a known key"],
    ["models: {}", "models.yaml: models must be a list"],
    ["models:\n  - name: a\n    name: b", "models.yaml: not valid YAML"],
  ])("refuses %j", (text, message) => {
    expect(errorOf(text)).toContain(message);
  });
});

describe("checkUrl", () => {
  it.each([
    ["http://h:8000", "http://h:8000"],
    ["http://h:8000/", "http://h:8000"],
    ["https://h/prefix/", "https://h/prefix"],
  ])("%s → %s", (raw, want) => {
    expect(checkUrl(raw)).toBe(want);
  });
  it.each(["h:8000", "file:///etc", "http://u:p@h", "http://h?x=1", "http://h/#f", "https://api.test/v1/"])(
    "refuses %s",
    (raw) => {
      expect(() => checkUrl(raw)).toThrow(FieldError);
    },
  );
});
