// Over 400 lines on purpose: the ModelService's behaviours share one core, database and set of fake upstreams per
// file; split by concern into describe blocks.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type DescMessage, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { ModelService } from "../../gen/passerelle/models/v1/model_service_pb.js";
import { ModelType, ProviderType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { testRedisUrl } from "../../test/support/env.js";
import { deadUrl, type FakeUpstream, startFakeUpstream } from "../../test/support/fake-upstreams.js";
import { generateApiKey } from "../accounts/index.js";
import { loadConfig } from "../config.js";
import { type Core, createCore } from "../core.js";
import type { Principal } from "../platform/context.js";

type Models = Client<typeof ModelService>;
type Accounts = Client<typeof AccountService>;

const UPSTREAM_KEY = "sk-upstream-key-that-must-never-leak-4711";
const bearer = (key: string): CallOptions => ({ headers: { authorization: `Bearer ${key}` } });

async function expectCode(fn: () => Promise<unknown>, code: Code, reason?: string): Promise<ConnectError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected the call to fail").toBeInstanceOf(ConnectError);
  const err = caught as ConnectError;
  expect(Code[err.code], err.message).toBe(Code[code]);
  if (reason !== undefined) expect(err.findDetails(ErrorInfoSchema)[0]?.reason, err.message).toBe(reason);
  return err;
}

const paramOf = (err: ConnectError) => err.findDetails(ErrorInfoSchema)[0]?.param;

describe("ModelService on a real core", () => {
  let tdb: TestDatabase;
  let dataDir: string;
  let coreCount = 0;
  const adminKey = generateApiKey();
  const opened: Core[] = [];
  let core: Core;
  let models: Models;
  let accounts: Accounts;
  const asAdmin = bearer(adminKey);
  /** Every response message and error text seen by the clients, serialized: the key must be in none. */
  const seen: string[] = [];
  let vllm: FakeUpstream;
  let vllm2: FakeUpstream;
  let tei: FakeUpstream;

  const recorder: Interceptor = (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) {
        const desc = res.method.output as DescMessage;
        seen.push(toJsonString(desc, res.message as never));
        seen.push(Buffer.from(toBinary(desc, res.message as never)).toString("latin1"));
      }
      return res;
    } catch (err) {
      seen.push(String(err), JSON.stringify((err as ConnectError).details ?? []));
      throw err;
    }
  };

  async function startCore(env: Record<string, string> = {}) {
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      // Each core stands for a process: a data directory of its own (one live usage journal per directory).
      PASSERELLE_DATA_DIR: path.join(dataDir, `core-${++coreCount}`),
      PASSERELLE_BOOTSTRAP_ADMIN_EMAIL: "root@models.test",
      PASSERELLE_BOOTSTRAP_ADMIN_KEY: adminKey,
      ...env,
    });
    const c = await createCore(config, pino({ level: "silent" }));
    opened.push(c);
    const transport = createRouterTransport(c.routes, {
      router: c.routerOptions,
      transport: { interceptors: [recorder] },
    });
    return {
      core: c,
      models: createClient(ModelService, transport),
      accounts: createClient(AccountService, transport),
    };
  }

  let seq = 0;
  async function newUser(roleId: string) {
    const { user } = await accounts.createUser({ email: `u${++seq}@models.test`, roleId }, asAdmin);
    const { secret } = await accounts.createApiKey({ userId: user?.id ?? "", name: "k" }, asAdmin);
    return { id: user?.id ?? "", key: secret, as: bearer(secret) };
  }
  async function newRole(permissions: number[] = []) {
    const { role } = await accounts.createRole({ name: `role-${++seq}`, permissions }, asAdmin);
    return role?.id ?? "";
  }
  const principalOf = (roleId: string, admin = false): Principal => ({
    userId: "u",
    email: "u@x",
    name: "u",
    roleId,
    roleName: "r",
    permissions: new Set(admin ? ["admin"] : []),
    organizationId: null,
    userExpiresAt: null,
    keyId: "k",
    keyExpiresAt: null,
  });

  beforeAll(async () => {
    tdb = await createTestDatabase("msvc");
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-msvc-"));
    vllm = await startFakeUpstream({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 32768 }], dims: 1024 });
    vllm2 = await startFakeUpstream({ models: [{ id: "Qwen/Qwen2.5-7B-Instruct", max_model_len: 16384 }], dims: 1024 });
    tei = await startFakeUpstream({ info: { model_id: "BAAI/bge-m3", max_input_length: 8192 }, dims: 1024 });
    ({ core, models, accounts } = await startCore());
  });
  afterAll(async () => {
    for (const c of [...opened].reverse()) await c.close().catch(() => undefined);
    await Promise.all([vllm?.close(), vllm2?.close(), tei?.close()]);
    await tdb?.drop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  describe("admin CRUD of models", () => {
    it("creates, reads, lists, renames, re-aliases, re-prices and deletes a model", async () => {
      const { model } = await models.createModel(
        {
          name: "Qwen/Qwen2.5-7B",
          aliases: ["qwen", "chat-default"],
          type: ModelType.TEXT_GENERATION,
          costPromptPerMillion: 0.1,
          costCompletionPerMillion: 0.3,
        },
        asAdmin,
      );
      expect(model).toMatchObject({
        name: "Qwen/Qwen2.5-7B",
        aliases: ["chat-default", "qwen"],
        type: ModelType.TEXT_GENERATION,
        maxContextLength: 0,
        vectorSize: 0,
        costPromptPerMillion: 0.1,
        costCompletionPerMillion: 0.3,
        providers: [],
        grantedRoleIds: [],
      });
      const id = model?.id ?? "";
      expect((await models.adminGetModel({ id }, asAdmin)).model?.name).toBe("Qwen/Qwen2.5-7B");
      const listed = await models.adminListModels({ name: "qwen2.5" }, asAdmin);
      expect(listed.models.map((m) => m.id)).toEqual([id]);

      const renamed = await models.updateModel(
        { id, name: "qwen-7b", aliases: { aliases: ["Qwen/Qwen2.5-7B"] }, costCompletionPerMillion: 0.5 },
        asAdmin,
      );
      expect(renamed.model).toMatchObject({
        name: "qwen-7b",
        aliases: ["Qwen/Qwen2.5-7B"],
        costPromptPerMillion: 0.1,
        costCompletionPerMillion: 0.5,
      });
      // The old alias is free again.
      const { model: other } = await models.createModel({ name: "qwen", type: ModelType.TEXT_GENERATION }, asAdmin);
      await models.deleteModel({ id: other?.id ?? "" }, asAdmin);

      await models.deleteModel({ id }, asAdmin);
      await expectCode(() => models.adminGetModel({ id }, asAdmin), Code.NotFound, "MODEL_NOT_FOUND");
      await expectCode(() => models.deleteModel({ id }, asAdmin), Code.NotFound);
      await expectCode(() => models.updateModel({ id: "nope", name: "x" }, asAdmin), Code.NotFound);
    });

    it("refuses a name or alias already used, whichever way round (AlreadyExists with the param)", async () => {
      await models.createModel(
        { name: "conflict-a", aliases: ["conflict-b"], type: ModelType.TEXT_GENERATION },
        asAdmin,
      );
      const cases: Array<[{ name: string; aliases?: string[] }, string]> = [
        [{ name: "conflict-a" }, "name"],
        [{ name: "conflict-b" }, "name"],
        [{ name: "conflict-c", aliases: ["conflict-a"] }, "aliases"],
        [{ name: "conflict-d", aliases: ["conflict-b"] }, "aliases"],
      ];
      for (const [req, param] of cases) {
        const err = await expectCode(
          () => models.createModel({ ...req, type: ModelType.TEXT_GENERATION }, asAdmin),
          Code.AlreadyExists,
          "MODEL_NAME_TAKEN",
        );
        expect(paramOf(err)).toBe(param);
      }
      const { model } = await models.createModel({ name: "conflict-e", type: ModelType.TEXT_GENERATION }, asAdmin);
      const err = await expectCode(
        () => models.updateModel({ id: model?.id ?? "", aliases: { aliases: ["conflict-b"] } }, asAdmin),
        Code.AlreadyExists,
        "MODEL_NAME_TAKEN",
      );
      expect(err.rawMessage).toContain("'conflict-b'");
    });

    it("validates input, naming the field", async () => {
      const cases: Array<[Parameters<Models["createModel"]>[0], string]> = [
        [{ name: "", type: ModelType.TEXT_GENERATION }, "name"],
        [{ name: "with space", type: ModelType.TEXT_GENERATION }, "name"],
        [{ name: "trailing/", type: ModelType.TEXT_GENERATION }, "name"],
        [{ name: "ok-name" }, "type"],
        [{ name: "ok-name", type: ModelType.TEXT_GENERATION, aliases: ["a", "a"] }, "aliases[1]"],
        [{ name: "ok-name", type: ModelType.TEXT_GENERATION, aliases: ["ok-name"] }, "aliases[0]"],
        [{ name: "ok-name", type: ModelType.TEXT_GENERATION, costPromptPerMillion: -1 }, "cost_prompt_per_million"],
      ];
      for (const [req, param] of cases) {
        const err = await expectCode(() => models.createModel(req, asAdmin), Code.InvalidArgument);
        expect(paramOf(err), JSON.stringify(req)).toBe(param);
      }
    });

    it("keeps the admin API for admins", async () => {
      const user = await newUser(await newRole());
      const calls: Array<() => Promise<unknown>> = [
        () => models.createModel({ name: "x", type: ModelType.TEXT_GENERATION }, user.as),
        () => models.adminListModels({}, user.as),
        () => models.adminGetModel({ id: "x" }, user.as),
        () => models.updateModel({ id: "x" }, user.as),
        () => models.deleteModel({ id: "x" }, user.as),
        () => models.createProvider({ modelId: "x" }, user.as),
        () => models.getProvider({ id: "x" }, user.as),
        () => models.listProviders({}, user.as),
        () => models.updateProvider({ id: "x" }, user.as),
        () => models.deleteProvider({ id: "x" }, user.as),
        () => models.grantModel({ roleId: "x", modelId: "x" }, user.as),
        () => models.revokeModel({ roleId: "x", modelId: "x" }, user.as),
      ];
      for (const call of calls) await expectCode(call, Code.PermissionDenied);
      await expectCode(() => models.listModels({}), Code.Unauthenticated);
    });
  });

  describe("providers and the probe", () => {
    it("registers a vLLM provider: the probe learns the max context; the key is kept and never returned", async () => {
      vllm.set({ key: UPSTREAM_KEY });
      const { model } = await models.createModel({ name: "probe-chat", type: ModelType.TEXT_GENERATION }, asAdmin);
      const { provider } = await models.createProvider(
        {
          modelId: model?.id ?? "",
          type: ProviderType.VLLM,
          url: `${vllm.url}/`,
          key: UPSTREAM_KEY,
          upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
          timeoutSeconds: 120,
          maxConcurrency: 64,
          carbon: { zone: "FRA", totalParamsB: 7.6, activeParamsB: 7.6 },
        },
        asAdmin,
      );
      expect(provider).toMatchObject({
        modelId: model?.id,
        type: ProviderType.VLLM,
        url: vllm.url,
        hasKey: true,
        upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
        timeoutSeconds: 120,
        weight: 1,
        maxConcurrency: 64,
        carbon: { zone: "FRA", totalParamsB: 7.6, activeParamsB: 7.6 },
      });
      expect(vllm.requests.at(-1)?.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      const read = await models.adminGetModel({ id: model?.id ?? "" }, asAdmin);
      expect(read.model?.maxContextLength).toBe(32768);
      expect(read.model?.providers.map((p) => p.id)).toEqual([provider?.id]);
      expect((await models.getProvider({ id: provider?.id ?? "" }, asAdmin)).provider?.hasKey).toBe(true);
      expect((await models.listProviders({ modelId: model?.id ?? "" }, asAdmin)).providers).toHaveLength(1);

      // Settings that do not move the endpoint are not probed again.
      const before = vllm.requests.length;
      const updated = await models.updateProvider({ id: provider?.id ?? "", weight: 3, timeoutSeconds: 60 }, asAdmin);
      expect(updated.provider).toMatchObject({ weight: 3, timeoutSeconds: 60, hasKey: true });
      expect(vllm.requests.length).toBe(before);
      // Removing the key is a re-point: the upstream now refuses, so the change is refused.
      await expectCode(
        () => models.updateProvider({ id: provider?.id ?? "", key: "" }, asAdmin),
        Code.FailedPrecondition,
        "PROVIDER_UPSTREAM_ERROR",
      );
      vllm.set({ key: undefined });
      const keyless = await models.updateProvider({ id: provider?.id ?? "", key: "" }, asAdmin);
      expect(keyless.provider?.hasKey).toBe(false);
      expect(vllm.requests.at(-1)?.authorization).toBeUndefined();
      await models.updateProvider({ id: provider?.id ?? "", key: UPSTREAM_KEY }, asAdmin);
    });

    it("refuses an unreachable upstream, a model it does not serve, and a provider type the model cannot use", async () => {
      const { model } = await models.createModel({ name: "probe-refusals", type: ModelType.TEXT_GENERATION }, asAdmin);
      const base = {
        modelId: model?.id ?? "",
        type: ProviderType.VLLM,
        upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
        key: UPSTREAM_KEY,
      };
      const dead = await deadUrl();
      const err = await expectCode(
        () => models.createProvider({ ...base, url: dead }, asAdmin),
        Code.FailedPrecondition,
        "PROVIDER_UNREACHABLE",
      );
      expect(err.rawMessage).toContain(`Could not reach the upstream at ${dead}/v1/models`);
      await expectCode(
        () => models.createProvider({ ...base, url: vllm.url, upstreamModel: "meta/llama" }, asAdmin),
        Code.FailedPrecondition,
        "PROVIDER_MODEL_NOT_SERVED",
      );
      const typeErr = await expectCode(
        () => models.createProvider({ ...base, type: ProviderType.TEI, url: tei.url }, asAdmin),
        Code.InvalidArgument,
      );
      expect(typeErr.rawMessage).toBe("'type' cannot be 'tei' for a text-generation model; use vllm or openai.");
      for (const [req, param] of [
        [{ ...base, url: "ftp://x" }, "url"],
        [{ ...base, url: `${vllm.url}/v1` }, "url"],
        [{ ...base, url: vllm.url, upstreamModel: "" }, "upstream_model"],
        [{ ...base, url: vllm.url, timeoutSeconds: 99999 }, "timeout_seconds"],
        [{ ...base, url: vllm.url, maxConcurrency: -1 }, "max_concurrency"],
        [{ ...base, url: vllm.url, carbon: { zone: "France" } }, "carbon.zone"],
        [{ ...base, url: vllm.url, key: "has space" }, "key"],
        [{ ...base, url: vllm.url, modelId: "01900000-0000-7000-8000-000000000000" }, "model_id"],
        [{ ...base, url: vllm.url, type: ProviderType.UNSPECIFIED }, "type"],
      ] as const) {
        const e = await expectCode(() => models.createProvider(req, asAdmin), Code.InvalidArgument);
        expect(paramOf(e)).toBe(param);
      }
      expect((await models.adminGetModel({ id: model?.id ?? "" }, asAdmin)).model?.providers).toEqual([]);
    });

    it("refuses a provider inconsistent with the model's others; learns the vector size of embeddings", async () => {
      const { model: chat } = await models.createModel(
        { name: "probe-consistency", type: ModelType.TEXT_GENERATION },
        asAdmin,
      );
      const chatId = chat?.id ?? "";
      const upstreamModel = "Qwen/Qwen2.5-7B-Instruct";
      await models.createProvider({ modelId: chatId, type: ProviderType.VLLM, url: vllm.url, upstreamModel }, asAdmin);
      const err = await expectCode(
        () =>
          models.createProvider({ modelId: chatId, type: ProviderType.VLLM, url: vllm2.url, upstreamModel }, asAdmin),
        Code.FailedPrecondition,
        "PROVIDER_INCONSISTENT",
      );
      expect(err.rawMessage).toBe(
        "This provider is inconsistent with the other providers of model 'probe-consistency': its max context length " +
          "is 16384, theirs is 32768.",
      );
      await expectCode(
        () =>
          models.createProvider({ modelId: chatId, type: ProviderType.VLLM, url: vllm.url, upstreamModel }, asAdmin),
        Code.AlreadyExists,
        "PROVIDER_ALREADY_EXISTS",
      );

      const { model: emb } = await models.createModel(
        { name: "bge-m3", type: ModelType.TEXT_EMBEDDINGS_INFERENCE },
        asAdmin,
      );
      const embId = emb?.id ?? "";
      await models.createProvider(
        { modelId: embId, type: ProviderType.TEI, url: tei.url, upstreamModel: "BAAI/bge-m3" },
        asAdmin,
      );
      expect((await models.adminGetModel({ id: embId }, asAdmin)).model).toMatchObject({
        maxContextLength: 8192,
        vectorSize: 1024,
      });
      // Same vectors, but a different max context (vLLM says 32768): refused.
      const second = await startFakeUpstream({ models: [{ id: "BAAI/bge-m3", max_model_len: 8192 }], dims: 768 });
      try {
        const e = await expectCode(
          () =>
            models.createProvider(
              { modelId: embId, type: ProviderType.VLLM, url: second.url, upstreamModel: "BAAI/bge-m3" },
              asAdmin,
            ),
          Code.FailedPrecondition,
          "PROVIDER_INCONSISTENT",
        );
        expect(e.rawMessage).toContain("its vector size is 768, theirs is 1024");
        second.set({ dims: 1024 });
        const ok = await models.createProvider(
          { modelId: embId, type: ProviderType.VLLM, url: second.url, upstreamModel: "BAAI/bge-m3", weight: 2 },
          asAdmin,
        );
        expect(ok.provider?.weight).toBe(2);
        // The type of a model with providers stays.
        await expectCode(
          () => models.updateModel({ id: embId, type: ModelType.TEXT_GENERATION }, asAdmin),
          Code.FailedPrecondition,
          "MODEL_HAS_PROVIDERS",
        );
        await models.deleteProvider({ id: ok.provider?.id ?? "" }, asAdmin);
        await expectCode(() => models.deleteProvider({ id: ok.provider?.id ?? "" }, asAdmin), Code.NotFound);
      } finally {
        await second.close();
      }
    });
  });

  describe("access", () => {
    let modelId: string;
    let roleId: string;
    let user: Awaited<ReturnType<typeof newUser>>;

    beforeAll(async () => {
      const { model } = await models.createModel(
        { name: "Mistral/Small-24B", aliases: ["small"], type: ModelType.TEXT_GENERATION, costPromptPerMillion: 0.2 },
        asAdmin,
      );
      modelId = model?.id ?? "";
      await models.createProvider(
        {
          modelId,
          type: ProviderType.VLLM,
          url: vllm.url,
          key: UPSTREAM_KEY,
          upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
        },
        asAdmin,
      );
      roleId = await newRole();
      user = await newUser(roleId);
    });

    it("hides a model that is not granted: absent from the list, NotFound like an unknown name", async () => {
      expect((await models.listModels({}, user.as)).models.map((m) => m.name)).not.toContain("Mistral/Small-24B");
      const hidden = await expectCode(
        () => models.getModel({ name: "small" }, user.as),
        Code.NotFound,
        "MODEL_NOT_FOUND",
      );
      const unknown = await expectCode(
        () => models.getModel({ name: "no-such" }, user.as),
        Code.NotFound,
        "MODEL_NOT_FOUND",
      );
      expect(hidden.rawMessage.replace("small", "X")).toBe(unknown.rawMessage.replace("no-such", "X"));
      await expectCode(() => core.modelRegistry.resolve("small", principalOf(roleId)), Code.NotFound);
    });

    it("shows a granted model by name and alias, without providers; a revocation hides it at once", async () => {
      const { grant } = await models.grantModel({ roleId, modelId }, asAdmin);
      expect(grant).toMatchObject({ roleId, modelId });
      expect((await models.grantModel({ roleId, modelId }, asAdmin)).grant?.id).toBe(grant?.id);
      expect((await models.adminGetModel({ id: modelId }, asAdmin)).model?.grantedRoleIds).toEqual([roleId]);

      const list = await models.listModels({}, user.as);
      expect(list.models.map((m) => m.name)).toEqual(["Mistral/Small-24B"]);
      expect(list.models[0]?.providers).toEqual([]);
      expect(list.models[0]?.grantedRoleIds).toEqual([]);
      for (const name of ["Mistral/Small-24B", "small"]) {
        const { model } = await models.getModel({ name }, user.as);
        expect(model).toMatchObject({ id: modelId, name: "Mistral/Small-24B", aliases: ["small"], providers: [] });
      }
      // The registry hands inference the providers, keys included.
      const resolved = await core.modelRegistry.resolve("small", principalOf(roleId));
      expect(resolved).toMatchObject({ name: "Mistral/Small-24B", type: "text-generation", costPromptPerMillion: 0.2 });
      expect(resolved.providers[0]).toMatchObject({
        url: vllm.url,
        key: UPSTREAM_KEY,
        upstreamModel: "Qwen/Qwen2.5-7B-Instruct",
      });
      expect(Object.isFrozen(resolved)).toBe(true);

      await models.revokeModel({ roleId, modelId }, asAdmin);
      await expectCode(() => models.getModel({ name: "small" }, user.as), Code.NotFound);
      await expectCode(() => core.modelRegistry.resolve("small", principalOf(roleId)), Code.NotFound);
      expect((await models.listModels({}, user.as)).models).toEqual([]);
      await expectCode(() => models.revokeModel({ roleId, modelId }, asAdmin), Code.NotFound, "MODEL_GRANT_NOT_FOUND");
      await expectCode(
        () => models.grantModel({ roleId: "01900000-0000-7000-8000-000000000000", modelId }, asAdmin),
        Code.NotFound,
        "ROLE_NOT_FOUND",
      );
      await expectCode(() => models.grantModel({ roleId, modelId: "nope" }, asAdmin), Code.NotFound, "MODEL_NOT_FOUND");
    });

    it("lets the bootstrap admin (the `admin` permission) use every model without a grant", async () => {
      const names = (await models.listModels({ pageSize: 100 }, asAdmin)).models.map((m) => m.name);
      expect(names).toContain("Mistral/Small-24B");
      expect((await models.getModel({ name: "small" }, asAdmin)).model?.id).toBe(modelId);
      expect((await core.modelRegistry.resolve("small", principalOf(roleId, true))).id).toBe(modelId);
    });

    it("invalidates resolutions on every write: a rename frees the old name at once", async () => {
      await models.grantModel({ roleId, modelId }, asAdmin);
      expect((await core.modelRegistry.resolve("small", principalOf(roleId))).aliases).toEqual(["small"]);
      await models.updateModel({ id: modelId, aliases: { aliases: ["small-2"] } }, asAdmin);
      await expectCode(() => core.modelRegistry.resolve("small", principalOf(roleId)), Code.NotFound);
      expect((await core.modelRegistry.resolve("small-2", principalOf(roleId))).id).toBe(modelId);
      await models.deleteModel({ id: modelId }, asAdmin);
      await expectCode(() => core.modelRegistry.resolve("small-2", principalOf(roleId)), Code.NotFound);
      await expectCode(() => models.getModel({ name: "small-2" }, user.as), Code.NotFound);
    });

    it("pages ListModels", async () => {
      const r = await newRole();
      const u = await newUser(r);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { model } = await models.createModel({ name: `paged-${i}`, type: ModelType.TEXT_GENERATION }, asAdmin);
        ids.push(model?.id ?? "");
        await models.grantModel({ roleId: r, modelId: model?.id ?? "" }, asAdmin);
      }
      const p1 = await models.listModels({ pageSize: 2 }, u.as);
      expect(p1.models.map((m) => m.id)).toEqual(ids.slice(0, 2));
      const p2 = await models.listModels({ pageSize: 2, pageToken: p1.nextPageToken }, u.as);
      expect(p2.models.map((m) => m.id)).toEqual(ids.slice(2));
      expect(p2.nextPageToken).toBe("");
    });
  });

  it("never returned the upstream key in any response or error", () => {
    expect(seen.length).toBeGreaterThan(50);
    for (const s of seen) expect(s).not.toContain(UPSTREAM_KEY);
  });

  it.skipIf(!testRedisUrl())("keeps several processes consistent through Redis pub/sub", async () => {
    const redis = { REDIS_URL: testRedisUrl() ?? "" };
    const a = await startCore(redis);
    const b = await startCore(redis);
    const role = await newRole();
    const { model } = await a.models.createModel({ name: "shared-model", type: ModelType.TEXT_GENERATION }, asAdmin);
    const id = model?.id ?? "";
    await a.models.grantModel({ roleId: role, modelId: id }, asAdmin);
    // b caches the resolution…
    expect((await b.core.modelRegistry.resolve("shared-model", principalOf(role))).id).toBe(id);
    // …and a's revocation reaches it.
    await a.models.revokeModel({ roleId: role, modelId: id }, asAdmin);
    await expect
      .poll(
        () =>
          b.core.modelRegistry.resolve("shared-model", principalOf(role)).then(
            () => "visible",
            (err: ConnectError) => Code[err.code],
          ),
        { timeout: 5000, interval: 20 },
      )
      .toBe("NotFound");
  });
});
