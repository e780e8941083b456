import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type CallOptions, type Client, createClient, createRouterTransport } from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelService } from "../../gen/passerelle/models/v1/model_service_pb.js";
import { ModelType, ProviderType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { deadUrl, type FakeUpstream, startFakeUpstream } from "../../test/support/fake-upstreams.js";
import { generateApiKey } from "../accounts/index.js";
import { loadConfig } from "../config.js";
import { type Core, createCore } from "../core.js";

const adminKey = generateApiKey();
const asAdmin: CallOptions = { headers: { authorization: `Bearer ${adminKey}` } };

/** PASSERELLE_MODELS_FILE at start: creates what is missing, leaves what exists alone, refuses a broken file. */
describe("models file bootstrap", () => {
  let tdb: TestDatabase;
  let dir: string;
  let vllm: FakeUpstream;
  let tei: FakeUpstream;
  let dead: string;
  const opened: Core[] = [];
  const logs: Array<Record<string, unknown>> = [];

  async function start(
    file: string | undefined,
    url = tdb.url,
  ): Promise<{ core: Core; models: Client<typeof ModelService> }> {
    const config = loadConfig({
      DATABASE_URL: url,
      PASSERELLE_DATA_DIR: dir,
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
      ...(file ? { PASSERELLE_MODELS_FILE: file } : {}),
    });
    const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const core = await createCore(config, logger);
    opened.push(core);
    return {
      core,
      models: createClient(ModelService, createRouterTransport(core.routes, { router: core.routerOptions })),
    };
  }
  async function stop(core: Core) {
    opened.splice(opened.indexOf(core), 1);
    await core.close();
  }
  async function writeFile(name: string, text: string): Promise<string> {
    const file = path.join(dir, name);
    await fs.writeFile(file, text);
    return file;
  }
  const allModels = async (models: Client<typeof ModelService>) =>
    (await models.adminListModels({ pageSize: 100 }, asAdmin)).models;

  const fileText = () => `
models:
  - name: qwen2.5-7b
    aliases: [chat-default]
    type: text-generation
    costs: { prompt_tokens: 0.1, completion_tokens: 0.3 }   # per 1M tokens
    providers:
      - { type: vllm, url: "${vllm.url}", key: sk-upstream-secret, model_name: Qwen/Qwen2.5-7B-Instruct,
          timeout_s: 120, max_concurrency: 64, carbon: { zone: FRA, total_params_b: 7.6, active_params_b: 7.6 } }
      - { type: vllm, url: "${dead}", model_name: Qwen/Qwen2.5-7B-Instruct }
  - name: bge-m3
    type: text-embeddings-inference
    providers:
      - { type: tei, url: "${tei.url}", model_name: BAAI/bge-m3 }
`;

  beforeAll(async () => {
    tdb = await createTestDatabase("mboot");
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-mboot-"));
    vllm = await startFakeUpstream({
      models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }],
      key: "sk-upstream-secret",
    });
    tei = await startFakeUpstream({ info: { model_id: "BAAI/bge-m3", max_input_length: 8192 }, dims: 1024 });
    dead = await deadUrl();
  });
  afterAll(async () => {
    for (const c of [...opened].reverse()) await c.close().catch(() => undefined);
    await Promise.all([vllm?.close(), tei?.close()]);
    await tdb?.drop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("creates the file's models and reachable providers; an unreachable provider is skipped with a warning", async () => {
    const file = await writeFile("models.yaml", fileText());
    const { core, models } = await start(file);
    const list = await allModels(models);
    expect(list.map((m) => m.name)).toEqual(["qwen2.5-7b", "bge-m3"]);
    const [qwen, bge] = list;
    expect(qwen).toMatchObject({
      aliases: ["chat-default"],
      type: ModelType.TEXT_GENERATION,
      maxContextLength: 32768,
      costPromptPerMillion: 0.1,
      costCompletionPerMillion: 0.3,
    });
    expect(qwen?.providers).toHaveLength(1);
    expect(qwen?.providers[0]).toMatchObject({
      type: ProviderType.VLLM,
      url: vllm.url,
      hasKey: true,
      timeoutSeconds: 120,
      maxConcurrency: 64,
      carbon: { zone: "FRA", totalParamsB: 7.6, activeParamsB: 7.6 },
    });
    expect(bge).toMatchObject({ maxContextLength: 8192, vectorSize: 1024 });
    expect(vllm.requests.at(-1)?.authorization).toBe("Bearer sk-upstream-secret");

    const warning = logs.find((l) => l.msg === "models file: skipped");
    expect(warning?.level).toBe(40);
    expect(String(warning?.why)).toContain(`Could not reach the upstream at ${dead}/v1/models`);
    // The key never reaches the logs.
    expect(JSON.stringify(logs)).not.toContain("sk-upstream-secret");
    await stop(core);
  });

  it("does not duplicate anything on the next start, and lets the database win", async () => {
    const file = path.join(dir, "models.yaml");
    const first = await start(undefined);
    const [qwen] = await allModels(first.models);
    const qwenId = qwen?.id ?? "";
    const providerId = qwen?.providers[0]?.id ?? "";
    // An administrator's edits.
    await first.models.updateModel({ id: qwenId, aliases: { aliases: ["qwen"] }, costPromptPerMillion: 9 }, asAdmin);
    await first.models.updateProvider({ id: providerId, weight: 7 }, asAdmin);
    await stop(first.core);

    const second = await start(file);
    const list = await allModels(second.models);
    expect(list.map((m) => m.name)).toEqual(["qwen2.5-7b", "bge-m3"]);
    expect(list[0]).toMatchObject({ id: qwenId, aliases: ["qwen"], costPromptPerMillion: 9 });
    expect(list[0]?.providers.map((p) => [p.id, p.weight])).toEqual([[providerId, 7]]);
    expect(list[1]?.providers).toHaveLength(1);
    await stop(second.core);
  });

  it("adds a provider skipped earlier once its upstream answers; never re-creates what an administrator deleted", async () => {
    const file = path.join(dir, "models.yaml");
    const up = await startFakeUpstream({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }] });
    try {
      await fs.writeFile(file, fileText().replace(dead, up.url));
      const first = await start(undefined);
      const bge = (await allModels(first.models))[1];
      await first.models.deleteModel({ id: bge?.id ?? "" }, asAdmin);
      await stop(first.core);

      const { core, models } = await start(file);
      const list = await allModels(models);
      expect(list.map((m) => m.name)).toEqual(["qwen2.5-7b"]);
      expect(list[0]?.providers.map((p) => p.url).sort()).toEqual([vllm.url, up.url].sort());
      expect(JSON.stringify(logs)).toContain("left out (renamed or deleted since a start created it)");
      await stop(core);
    } finally {
      await up.close();
    }
  });

  it("does not re-create a model an administrator renamed, nor a provider they re-pointed", async () => {
    const file = path.join(dir, "models.yaml");
    const other = await startFakeUpstream({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }] });
    // A database of its own: the tests above leave theirs changed.
    const own = await createTestDatabase("mboot2");
    try {
      await fs.writeFile(file, fileText());
      const first = await start(file, own.url);
      const [qwen, bge] = await allModels(first.models);
      const vllmProvider = qwen?.providers.find((p) => p.url === vllm.url);
      await first.models.updateProvider({ id: vllmProvider?.id ?? "", url: other.url }, asAdmin);
      await first.models.updateModel({ id: bge?.id ?? "", name: "bge-renamed" }, asAdmin);
      await stop(first.core);

      const { core, models } = await start(file, own.url);
      const list = await allModels(models);
      expect(list.map((m) => m.name).sort()).toEqual(["bge-renamed", "qwen2.5-7b"]);
      expect(list.find((m) => m.name === "qwen2.5-7b")?.providers.map((p) => p.url)).toEqual([other.url]);
      await stop(core);
    } finally {
      await other.close();
      await own.drop();
    }
  });

  it("skips a model whose name is taken, as an alias, by another model", async () => {
    const first = await start(undefined);
    const [qwen] = await allModels(first.models);
    await first.models.updateModel({ id: qwen?.id ?? "", aliases: { aliases: ["mistral"] } }, asAdmin);
    await stop(first.core);
    const file = await writeFile("taken.yaml", "models:\n  - name: mistral\n    type: text-generation\n");
    logs.length = 0;
    const { core, models } = await start(file);
    // (bge-m3 was deleted by the test before, for good.)
    expect((await allModels(models)).map((m) => m.name)).toEqual(["qwen2.5-7b"]);
    expect(logs.find((l) => l.msg === "models file: skipped")?.why).toBe("'mistral' is an alias of model 'qwen2.5-7b'");
    await stop(core);
  });

  it("refuses to start on an invalid or missing file, with an error naming the faulty path", async () => {
    const bad = await writeFile(
      "bad.yaml",
      "models:\n  - name: a\n    type: text-generation\n    providers:\n      - { type: vllm, url: http://x, model_name: m }\n      - { type: vllm, url: 'not a url', model_name: m }\n",
    );
    await expect(start(bad)).rejects.toThrow(
      `PASSERELLE_MODELS_FILE (${bad}): models[0].providers[1].url must be an http(s) URL`,
    );
    const missing = path.join(dir, "missing.yaml");
    await expect(start(missing)).rejects.toThrow(`PASSERELLE_MODELS_FILE: cannot read ${missing}`);
    // Refused before anything was opened: no database was even needed.
    await expect(start(bad, "postgresql://nobody@127.0.0.1:1/none")).rejects.toThrow(
      /models\[0\]\.providers\[1\]\.url/,
    );
  });
});
