import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../services/accounts/secrets.js";
import { type ChildPlatform, startChildPlatform } from "../support/child-platform.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { writeModelsFile } from "../support/governance.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const MODULE_LOG_HOOK = fileURLToPath(new URL("../support/module-log/register.mjs", import.meta.url));
const ORM_MODULE = /\/node_modules\/(@mikro-orm|kysely)\//;

/**
 * The serving path is plain SQL on the pool. `npm start` (services/main.ts, in a child process) never loads a module
 * of MikroORM or Kysely to serve: on a first start, a task process it forks migrates and bootstraps the database; a
 * restart finds everything in place and answers chat, streams, embeddings, model listing and lookup, the caller's
 * profile and usage. The first administrative write loads the ORM, over the same pool.
 */
describe("serving without the ORM", () => {
  let sim: Simulator;
  let db: TestDatabase;
  let dir: string;
  let child: ChildPlatform | undefined;
  let moduleLog: string;
  let env: Record<string, string>;
  const adminKey = generateApiKey();

  beforeAll(async () => {
    sim = await startSimulator({ completionTokens: 8 });
    db = await createTestDatabase("serving");
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-serving-"));
    moduleLog = path.join(dir, "modules.txt");
    const models = await writeModelsFile(dir, [
      {
        name: "chat",
        type: "text-generation",
        urls: [sim.url],
        upstreamModel: "sim-chat",
        costs: { prompt_tokens: 1, completion_tokens: 2 },
      },
      { name: "embed", type: "text-embeddings-inference", urls: [sim.url], upstreamModel: "sim-embed" },
    ]);
    env = {
      DATABASE_URL: db.url,
      PASSERELLE_DATA_DIR: path.join(dir, "data"),
      PASSERELLE_MODELS_FILE: models,
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
      PASSERELLE_BOOTSTRAP_ADMIN_EMAIL: "admin@serving.test",
      PASSERELLE_TEST_MODULE_LOG: moduleLog,
    };
    // The first start has a task process migrate the database, create the admin and the models: that process loads
    // the ORM, the one that then serves does not…
    const first = await startChildPlatform(env, 60_000, ["--import", MODULE_LOG_HOOK]);
    expect((await first.stop()).code).toBe(0);
    const loaders = new Set((await ormModules()).map((line) => line.split("\t")[0]));
    expect(loaders.size).toBe(1);
    expect(loaders.has(String(first.pid))).toBe(false);
    await fs.rm(moduleLog);
  }, 120_000);
  afterAll(async () => {
    await child?.stop();
    await sim?.close();
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function ormModules(): Promise<string[]> {
    const text = await fs.readFile(moduleLog, "utf8").catch(() => "");
    return text.split("\n").filter((url) => ORM_MODULE.test(url));
  }

  it("serves every route of the serving path without loading MikroORM; the first admin write loads it", async () => {
    // …nor does a restart, which finds everything in place.
    child = await startChildPlatform(env, 60_000, ["--import", MODULE_LOG_HOOK]);
    const openai = new OpenAI({ baseURL: `${child.httpUrl}/v1`, apiKey: adminKey, maxRetries: 0 });
    const call = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${child?.httpUrl}${route}`, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> & { data?: unknown[] } };
    };

    const chat = await openai.chat.completions.create({
      model: "chat",
      messages: [{ role: "user", content: "Salut" }],
    });
    validateOpenAI("CreateChatCompletionResponse", chat);
    const stream = await openai.chat.completions.create({
      model: "chat",
      messages: [{ role: "user", content: "Salut" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    for await (const chunk of stream) {
      validateOpenAI("CreateChatCompletionStreamResponse", chunk);
      chunks++;
    }
    expect(chunks).toBeGreaterThan(1);
    const emb = await openai.embeddings.create({ model: "embed", input: ["un", "deux"] });
    validateOpenAI("CreateEmbeddingResponse", emb);
    expect(emb.data).toHaveLength(2);
    const models = await openai.models.list();
    validateOpenAI("ListModelsResponse", { object: "list", data: models.data });
    expect(models.data.map((m) => m.id).sort()).toEqual(["chat", "embed"]);
    validateOpenAI("Model", await openai.models.retrieve("chat"));
    const me = await call("GET", "/v1/me");
    expect(me.status).toBe(200);
    expect(me.body.email).toBe("admin@serving.test");
    // Usage is journaled, then written by the buffer: poll the caller's usage until both chat requests are there.
    let chatRecords = 0;
    for (let i = 0; i < 100 && chatRecords < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const usage = await call("GET", "/v1/me/usage");
      chatRecords = (usage.body.data as { model: string }[]).filter((r) => r.model === "chat").length;
    }
    expect(chatRecords).toBe(2);
    expect(await ormModules()).toEqual([]);

    // An administrative write goes through MikroORM, loaded now, on the same pool; serving goes on.
    const role = await call("POST", "/v1/admin/roles", { name: "after-orm" });
    expect(role.status).toBe(201);
    expect(await ormModules()).not.toEqual([]);
    expect((await call("GET", `/v1/admin/roles/${role.body.id}`)).body.name).toBe("after-orm");
    const again = await openai.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "Re" }] });
    expect(again.choices[0]?.message.content).toBeTruthy();
  });
});
