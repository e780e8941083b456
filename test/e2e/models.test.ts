import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRole, createUser, expectOpenAIError, type Json, rest, type TestUser } from "../support/accounts.js";
import { deadUrl, type FakeUpstream, startFakeUpstream } from "../support/fake-upstreams.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const UPSTREAM_KEY = "sk-upstream-e2e-secret-never-shown";

/** The model registry over REST: OpenAI's /v1/models, the admin API, grants, and the upstream key's secrecy. */
describe("models over REST", () => {
  let t: TestPlatform;
  let vllm: FakeUpstream;
  let tei: FakeUpstream;
  let role: Json;
  let user: TestUser;
  let qwen: Json;
  /** The text of every response: the upstream key must appear in none. */
  const bodies: string[] = [];
  const call = async (method: string, path: string, opts: Parameters<typeof rest>[3] = {}) => {
    const res = await rest(t, method, path, opts);
    bodies.push(JSON.stringify(res.body ?? ""));
    return res;
  };
  const asAdmin = (method: string, path: string, body?: unknown) => call(method, path, { key: t.adminKey, body });
  const sdk = (key: string) => new OpenAI({ apiKey: key, baseURL: `${t.httpUrl}/v1`, maxRetries: 0 });

  beforeAll(async () => {
    t = await startTestPlatform();
    vllm = await startFakeUpstream({
      models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }],
      key: UPSTREAM_KEY,
    });
    tei = await startFakeUpstream({ info: { model_id: "BAAI/bge-m3", max_input_length: 8192 }, dims: 1024 });
    role = await createRole(t);
    user = await createUser(t, { role: role.id });
    const created = await asAdmin("POST", "/v1/admin/models", {
      name: "Qwen/Qwen2.5-7B-Instruct",
      aliases: ["qwen", "chat-default"],
      type: "text-generation",
      costs: { prompt_tokens: 0.1, completion_tokens: 0.3 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    qwen = created.body;
  });
  afterAll(async () => {
    await Promise.all([vllm?.close(), tei?.close()]);
    await t?.close();
  });

  describe("admin API", () => {
    it("creates a model: the administrators' view", () => {
      expect(qwen).toMatchObject({
        object: "model",
        name: "Qwen/Qwen2.5-7B-Instruct",
        aliases: ["chat-default", "qwen"],
        type: "text-generation",
        max_context_length: null,
        vector_size: null,
        costs: { prompt_tokens: 0.1, completion_tokens: 0.3 },
        providers: [],
        roles: [],
      });
      expect(qwen.id).toMatch(/^[0-9a-f-]{36}$/);
    });

    it("registers a provider after probing it; the key is write-only", async () => {
      const res = await asAdmin("POST", "/v1/admin/providers", {
        model: qwen.id,
        type: "vllm",
        url: vllm.url,
        key: UPSTREAM_KEY,
        model_name: "Qwen/Qwen2.5-7B-Instruct",
        timeout_s: 120,
        max_concurrency: 64,
        carbon: { zone: "FRA", total_params_b: 7.6, active_params_b: 7.6 },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toEqual({
        object: "provider",
        id: expect.any(String),
        model: qwen.id,
        type: "vllm",
        url: vllm.url,
        has_key: true,
        model_name: "Qwen/Qwen2.5-7B-Instruct",
        timeout_s: 120,
        weight: 1,
        max_concurrency: 64,
        carbon: { zone: "FRA", total_params_b: 7.6, active_params_b: 7.6 },
        created: expect.any(Number),
        updated: expect.any(Number),
      });
      const model = await asAdmin("GET", `/v1/admin/models/${qwen.id}`);
      expect(model.body).toMatchObject({ max_context_length: 32768, providers: [{ id: res.body.id, has_key: true }] });
      const one = await asAdmin("GET", `/v1/admin/providers/${res.body.id}`);
      expect(one.body.id).toBe(res.body.id);
      const list = await asAdmin("GET", `/v1/admin/providers?model=${qwen.id}`);
      expect(list.body).toMatchObject({ object: "list", data: [{ id: res.body.id }], has_more: false });
      const patched = await asAdmin("PATCH", `/v1/admin/providers/${res.body.id}`, {
        weight: 5,
        carbon: { zone: "DEU" },
      });
      expect(patched.body).toMatchObject({ weight: 5, carbon: { zone: "DEU", total_params_b: 0 }, has_key: true });
    });

    it("answers 409 for an unreachable or inconsistent upstream, with a clear message", async () => {
      const dead = await deadUrl();
      const down = await asAdmin("POST", "/v1/admin/providers", {
        model: qwen.id,
        type: "vllm",
        url: dead,
        model_name: "Qwen/Qwen2.5-7B-Instruct",
      });
      expectOpenAIError(down, 409, "conflict_error");
      expect(down.body.error.code).toBe("provider_unreachable");
      expect(down.body.error.message).toContain(`Could not reach the upstream at ${dead}/v1/models`);

      const other = await startFakeUpstream({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 4096 }] });
      try {
        const bad = await asAdmin("POST", "/v1/admin/providers", {
          model: qwen.id,
          type: "vllm",
          url: other.url,
          model_name: "Qwen/Qwen2.5-7B-Instruct",
        });
        expectOpenAIError(bad, 409, "conflict_error");
        expect(bad.body.error).toMatchObject({
          code: "provider_inconsistent",
          message: expect.stringContaining("its max context length is 4096, theirs is 32768"),
        });
      } finally {
        await other.close();
      }
    });

    it("answers 409 for a name or alias already used, and 400 naming the REST field at fault", async () => {
      const taken = await asAdmin("POST", "/v1/admin/models", { name: "chat-default", type: "text-generation" });
      expectOpenAIError(taken, 409, "conflict_error");
      expect(taken.body.error).toMatchObject({ code: "model_name_taken", param: "name" });
      const alias = await asAdmin("POST", "/v1/admin/models", {
        name: "fresh",
        aliases: ["qwen"],
        type: "text-generation",
      });
      expect(alias.body.error).toMatchObject({ code: "model_name_taken", param: "aliases" });

      const cases: Array<[string, unknown, string]> = [
        ["/v1/admin/models", { name: "a b", type: "text-generation" }, "name"],
        ["/v1/admin/models", { name: "x", type: "chat" }, "type"],
        [
          "/v1/admin/models",
          { name: "x", type: "text-generation", costs: { prompt_tokens: -1 } },
          "costs.prompt_tokens",
        ],
        ["/v1/admin/providers", { model: qwen.id, type: "vllm", url: "http://x", model_name: "" }, "model_name"],
        ["/v1/admin/providers", { model: qwen.id, type: "tei", url: "http://x", model_name: "m" }, "type"],
        ["/v1/admin/providers", { model: qwen.id, type: "vllm", url: "http://x/v1", model_name: "m" }, "url"],
        ["/v1/admin/providers", { model: "nope", type: "vllm", url: "http://x", model_name: "m" }, "model"],
        [
          "/v1/admin/providers",
          { model: qwen.id, type: "vllm", url: "http://x", model_name: "m", carbon: { zone: "fra" } },
          "carbon.zone",
        ],
      ];
      for (const [path, body, param] of cases) {
        const res = await asAdmin("POST", path, body);
        expectOpenAIError(res, 400, "invalid_request_error");
        expect(res.body.error.param, JSON.stringify(body)).toBe(param);
      }
      const timeout = await asAdmin("PATCH", `/v1/admin/providers/${qwen.providers?.[0]?.id ?? "x"}`, { timeout_s: 0 });
      expect(timeout.status).toBe(400);
    });

    it("updates, lists with paging and deletes models; a plain user gets 403", async () => {
      const created = await asAdmin("POST", "/v1/admin/models", { name: "tmp-model", type: "text-generation" });
      const id = created.body.id;
      const patched = await asAdmin("PATCH", `/v1/admin/models/${id}`, {
        name: "tmp/renamed",
        aliases: ["tmp-alias"],
        costs: { completion_tokens: 2 },
      });
      expect(patched.body).toMatchObject({
        name: "tmp/renamed",
        aliases: ["tmp-alias"],
        costs: { prompt_tokens: 0, completion_tokens: 2 },
      });
      const page1 = await asAdmin("GET", "/v1/admin/models?limit=1");
      expect(page1.body).toMatchObject({ object: "list", has_more: true, first_id: qwen.id, last_id: qwen.id });
      const page2 = await asAdmin("GET", `/v1/admin/models?limit=1&after=${page1.body.last_id}`);
      expect(page2.body.data[0].id).not.toBe(qwen.id);
      expect((await asAdmin("GET", "/v1/admin/models?name=renamed")).body.data.map((m: Json) => m.id)).toEqual([id]);

      expectOpenAIError(await call("GET", "/v1/admin/models", { key: user.key }), 403, "permission_error");
      expectOpenAIError(
        await call("POST", `/v1/admin/roles/${role.id}/models/${id}`, { key: user.key }),
        403,
        "permission_error",
      );

      const del = await asAdmin("DELETE", `/v1/admin/models/${id}`);
      expect(del.body).toEqual({ id, object: "model.deleted", deleted: true });
      expectOpenAIError(await asAdmin("GET", `/v1/admin/models/${id}`), 404, "invalid_request_error");
    });
  });

  describe("OpenAI's /v1/models", () => {
    it("lists and retrieves in OpenAI's shape, names with '/' and aliases included", async () => {
      const list = await asAdmin("GET", "/v1/models");
      expect(list.status).toBe(200);
      validateOpenAI("ListModelsResponse", list.body);
      const entry = list.body.data.find((m: Json) => m.id === "Qwen/Qwen2.5-7B-Instruct");
      expect(entry).toEqual({
        id: "Qwen/Qwen2.5-7B-Instruct",
        object: "model",
        created: expect.any(Number),
        owned_by: "passerelle",
        type: "text-generation",
        aliases: ["chat-default", "qwen"],
        max_context_length: 32768,
        vector_size: null,
        costs: { prompt_tokens: 0.1, completion_tokens: 0.3 },
      });
      for (const path of [
        "/v1/models/Qwen/Qwen2.5-7B-Instruct",
        "/v1/models/Qwen%2FQwen2.5-7B-Instruct",
        "/v1/models/qwen",
        "/v1/models/chat-default",
      ]) {
        const res = await asAdmin("GET", path);
        expect(res.status, path).toBe(200);
        validateOpenAI("Model", res.body);
        expect(res.body, path).toEqual(entry);
      }
      expectOpenAIError(await asAdmin("GET", "/v1/models/QWEN"), 404, "invalid_request_error");
      expectOpenAIError(await asAdmin("GET", "/v1/models/Qwen/nope"), 404, "invalid_request_error");
      expectOpenAIError(await call("GET", "/v1/models"), 401, "invalid_request_error");
    });

    it("a model not granted to the caller's role is hidden and 404; a grant shows it; a revocation hides it", async () => {
      const list = await call("GET", "/v1/models", { key: user.key });
      expect(list.body).toEqual({ object: "list", data: [] });
      const hidden = await call("GET", "/v1/models/qwen", { key: user.key });
      expectOpenAIError(hidden, 404, "invalid_request_error");
      expect(hidden.body.error).toMatchObject({
        code: "model_not_found",
        message: "The model 'qwen' does not exist or you do not have access to it.",
      });

      const grant = await asAdmin("POST", `/v1/admin/roles/${role.id}/models/${qwen.id}`);
      expect(grant.status).toBe(200);
      expect(grant.body).toEqual({
        object: "model_grant",
        id: expect.any(String),
        role: role.id,
        model: qwen.id,
        created: expect.any(Number),
        limits: { requests_per_minute: null, requests_per_day: null, tokens_per_minute: null, tokens_per_day: null },
      });
      expect((await asAdmin("GET", `/v1/admin/models/${qwen.id}`)).body.roles).toEqual([role.id]);
      const visible = await call("GET", "/v1/models", { key: user.key });
      expect(visible.body.data.map((m: Json) => m.id)).toEqual(["Qwen/Qwen2.5-7B-Instruct"]);
      expect((await call("GET", "/v1/models/chat-default", { key: user.key })).status).toBe(200);

      // The official SDK: list, retrieve by a name with '/' (it percent-encodes it) and by alias.
      const client = sdk(user.key);
      const ids: string[] = [];
      for await (const m of client.models.list()) ids.push(m.id);
      expect(ids).toEqual(["Qwen/Qwen2.5-7B-Instruct"]);
      expect((await client.models.retrieve("Qwen/Qwen2.5-7B-Instruct")).id).toBe("Qwen/Qwen2.5-7B-Instruct");
      expect((await client.models.retrieve("qwen")).owned_by).toBe("passerelle");
      await expect(client.models.retrieve("no-such-model")).rejects.toBeInstanceOf(OpenAI.NotFoundError);

      const revoked = await asAdmin("DELETE", `/v1/admin/roles/${role.id}/models/${qwen.id}`);
      expect(revoked.body).toEqual({ id: grant.body.id, object: "model_grant.deleted", deleted: true });
      expectOpenAIError(await call("GET", "/v1/models/qwen", { key: user.key }), 404, "invalid_request_error");
      expectOpenAIError(
        await asAdmin("DELETE", `/v1/admin/roles/${role.id}/models/${qwen.id}`),
        404,
        "invalid_request_error",
      );
      await expect(client.models.retrieve("qwen")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    });

    it("serves an embeddings model with its vector size", async () => {
      const bge = await asAdmin("POST", "/v1/admin/models", { name: "BAAI/bge-m3", type: "text-embeddings-inference" });
      const p = await asAdmin("POST", "/v1/admin/providers", {
        model: bge.body.id,
        type: "tei",
        url: tei.url,
        model_name: "BAAI/bge-m3",
      });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const res = await asAdmin("GET", "/v1/models/BAAI/bge-m3");
      validateOpenAI("Model", res.body);
      expect(res.body).toMatchObject({
        type: "text-embeddings-inference",
        max_context_length: 8192,
        vector_size: 1024,
      });
    });
  });

  it("never sent the upstream key in any response", () => {
    expect(bodies.length).toBeGreaterThan(30);
    for (const b of bodies) expect(b).not.toContain(UPSTREAM_KEY);
  });
});
