import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRole, createUser, expectOpenAIError, type Json, rest, type TestUser } from "../support/accounts.js";
import { testRedisUrl } from "../support/env.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

const MODEL = "qwen2.5-7b";

/**
 * Per-model rate limits as a developer meets them, over real sockets: a role's limits granted through the admin
 * API, an API key's own limits that only tighten, and GET /v1/me showing both and what remains, then chat calls
 * through the official openai SDK consuming them. On the test Redis when there is one (the shared limiter), else
 * in process.
 */
describe("rate limits per role × model and per key, shown on /v1/me", () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let ada: TestUser;
  let roleId: string;
  let modelId: string;

  const me = (key: string, query = "") => rest(t, "GET", `/v1/me${query}`, { key });
  const limitsOn = (body: Json) => (body.limits as Json[]).find((l) => l.model === MODEL);
  const chat = (key: string) =>
    new OpenAI({ baseURL: `${t.httpUrl}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Bonjour" }],
      max_tokens: 20,
    });
  /** The status of a chat call that is expected to be refused. */
  const refusal = async (key: string): Promise<{ status: number; code: unknown }> => {
    try {
      await chat(key);
    } catch (err) {
      if (err instanceof OpenAI.APIError) return { status: err.status ?? 0, code: err.code };
      throw err;
    }
    throw new Error("expected the call to be refused");
  };

  beforeAll(async () => {
    sim = await startSimulator({ completionTokens: 6 });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-me-limits-"));
    const file = path.join(dir, "models.yaml");
    await fs.writeFile(
      file,
      `models:\n  - name: ${MODEL}\n    type: text-generation\n    providers:\n      - { type: vllm, url: "${sim.url}", model_name: sim-chat }\n`,
    );
    t = await startTestPlatform({ redis: Boolean(testRedisUrl()), env: { PASSERELLE_MODELS_FILE: file } });
    roleId = (await createRole(t)).id;
    ada = await createUser(t, { role: roleId });
    const models = await rest(t, "GET", "/v1/admin/models?limit=100", { key: t.adminKey });
    modelId = (models.body.data as Json[]).find((m) => m.name === MODEL)?.id;
    expect(modelId).toBeTruthy();
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("shows the role's limits and what remains; a key's own limit binds for that key only", async () => {
    const grant = await rest(t, "POST", `/v1/admin/roles/${roleId}/models/${modelId}`, {
      key: t.adminKey,
      body: { requests_per_minute: 5, tokens_per_minute: 100_000 },
    });
    expect(grant.status, JSON.stringify(grant.body)).toBe(200);

    const before = await me(ada.key);
    expect(before.status).toBe(200);
    expect(before.body.limits).toEqual([
      {
        model: MODEL,
        requests_per_minute: { limit: 5, remaining: 5, reset_seconds: 0, role_limit: 5, key_limit: null },
        requests_per_day: null,
        tokens_per_minute: {
          limit: 100_000,
          remaining: 100_000,
          reset_seconds: 0,
          role_limit: 100_000,
          key_limit: null,
        },
        tokens_per_day: null,
      },
    ]);
    expect((await me(ada.key, "?view=basic")).body.limits).toEqual([]);
    expect((await rest(t, "GET", "/v1/me/info", { key: ada.key })).body.limits).toHaveLength(1);

    // Two calls: two requests and their real tokens are counted (the estimate is settled to the real usage).
    const used = (await chat(ada.key)).usage?.total_tokens ?? 0;
    const used2 = (await chat(ada.key)).usage?.total_tokens ?? 0;
    expect(used).toBeGreaterThan(0);
    let after: Json;
    for (let i = 0; i < 50; i++) {
      after = limitsOn((await me(ada.key)).body);
      if (after.tokens_per_minute.remaining === 100_000 - used - used2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(after.requests_per_minute).toMatchObject({ limit: 5, remaining: 3, role_limit: 5, key_limit: null });
    expect(after.requests_per_minute.reset_seconds).toBeGreaterThan(0);
    expect(after.requests_per_minute.reset_seconds).toBeLessThanOrEqual(61);
    expect(after.tokens_per_minute).toMatchObject({ limit: 100_000, remaining: 100_000 - used - used2 });

    // A key of Ada's with 1 request per minute: its second call is refused, her other key still works.
    const made = await rest(t, "POST", "/v1/me/keys", {
      key: ada.key,
      body: { name: "script", limits: { requests_per_minute: 1 } },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.limits).toEqual({
      requests_per_minute: 1,
      requests_per_day: null,
      tokens_per_minute: null,
      tokens_per_day: null,
    });
    const script: string = made.body.key;
    await chat(script);
    expect(await refusal(script)).toEqual({ status: 429, code: "rate_limit_exceeded" });
    await chat(ada.key); // 4 of the role's 5
    expect(limitsOn((await me(script)).body).requests_per_minute).toMatchObject({
      limit: 1,
      remaining: 0,
      role_limit: 5,
      key_limit: 1,
    });
    expect(limitsOn((await me(ada.key)).body).requests_per_minute).toMatchObject({
      limit: 5,
      remaining: 1,
      key_limit: null,
    });

    // A key limit of 0 refuses every call with the key (429), and counts nothing.
    const zero = await rest(t, "PATCH", `/v1/me/keys/${made.body.id}`, {
      key: ada.key,
      body: { limits: { requests_per_day: 0 } },
    });
    expect(zero.status, JSON.stringify(zero.body)).toBe(200);
    expect(zero.body).toMatchObject({ name: "script", limits: { requests_per_minute: null, requests_per_day: 0 } });
    expect((await refusal(script)).status).toBe(429);
    expect(limitsOn((await me(script)).body)).toMatchObject({
      requests_per_minute: { limit: 5, remaining: 1, role_limit: 5, key_limit: null },
      requests_per_day: { limit: 0, remaining: 0, role_limit: null, key_limit: 0 },
    });

    // Removed: the key is back under the role's limits alone, which then bind for every key of Ada's.
    const cleared = await rest(t, "PATCH", `/v1/me/keys/${made.body.id}`, { key: ada.key, body: { limits: null } });
    expect(cleared.body.limits).toEqual({
      requests_per_minute: null,
      requests_per_day: null,
      tokens_per_minute: null,
      tokens_per_day: null,
    });
    await chat(script); // 5 of 5
    expect(await refusal(ada.key)).toEqual({ status: 429, code: "rate_limit_exceeded" });
    expect(limitsOn((await me(ada.key)).body).requests_per_minute).toMatchObject({ limit: 5, remaining: 0 });
  });

  it("the admin key routes take and show a key's limits too", async () => {
    const made = await rest(t, "POST", "/v1/admin/keys", {
      key: t.adminKey,
      body: { name: "capped", user: ada.id, limits: { tokens_per_day: 1_000, requests_per_day: null } },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.limits).toMatchObject({ tokens_per_day: 1_000, requests_per_day: null });
    const read = await rest(t, "GET", `/v1/admin/keys/${made.body.id}`, { key: t.adminKey });
    expect(read.body.limits).toMatchObject({ tokens_per_day: 1_000 });
    const renamed = await rest(t, "PATCH", `/v1/admin/keys/${made.body.id}`, {
      key: t.adminKey,
      body: { name: "renamed" },
    });
    expect(renamed.body).toMatchObject({ name: "renamed", limits: { tokens_per_day: 1_000 } });
    const listed = await rest(t, "GET", "/v1/me/keys?limit=100", { key: ada.key });
    expect((listed.body.data as Json[]).find((k) => k.id === made.body.id)?.limits.tokens_per_day).toBe(1_000);
  });

  it("refuses limits out of range or malformed, over REST (400) and Connect (invalid_argument)", async () => {
    for (const limits of [
      { requests_per_minute: -1 },
      { tokens_per_day: 4_294_967_296 },
      { tokens_per_minute: 1.5 },
      { requests_per_hour: 3 },
      "many",
    ]) {
      const res = await rest(t, "POST", "/v1/me/keys", { key: ada.key, body: { name: "bad", limits } });
      expectOpenAIError(res, 400, "invalid_request_error");
    }
    const key = (await rest(t, "POST", "/v1/me/keys", { key: ada.key, body: { name: "ok" } })).body;
    expect(key.limits.requests_per_minute).toBeNull();
    for (const body of [{}, { limits: { requests_per_day: -5 } }, { name: "x", limits: { tokens_per_day: 2 ** 32 } }]) {
      const res = await rest(t, "PATCH", `/v1/me/keys/${key.id}`, { key: ada.key, body });
      expectOpenAIError(res, 400, "invalid_request_error");
    }
    for (const value of [-1, 4_294_967_296]) {
      const res = await fetch(`${t.httpUrl}/passerelle.accounts.v1.AccountService/CreateApiKey`, {
        method: "POST",
        headers: { authorization: `Bearer ${ada.key}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "bad", limits: { requestsPerMinute: value } }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as Json).code).toBe("invalid_argument");
    }
    const keys = await rest(t, "GET", "/v1/me/keys?limit=100", { key: ada.key });
    expect((keys.body.data as Json[]).some((k) => k.name === "bad")).toBe(false);
  });
});
