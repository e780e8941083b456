import { type Client, Code, type ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { ModelService } from "../../gen/passerelle/models/v1/model_service_pb.js";
import { ModelType, ProviderType } from "../../gen/passerelle/models/v1/resources_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { accountEntities } from "../accounts/entities.js";
import { kPrincipal, type Principal } from "../platform/context.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { failedPrecondition } from "../platform/errors.js";
import { createMemoryKv, type KvStore } from "../platform/kv/index.js";
import { modelEntities } from "./entities.js";
import { type Models, type Probe, type ProbeTarget, parseModelsFile, setupModels } from "./index.js";

const admin: Principal = {
  userId: "u",
  email: "admin@x",
  name: "admin",
  roleId: "01900000-0000-7000-8000-000000000001",
  roleName: "admin",
  permissions: new Set(["admin"]),
  organizationId: null,
  userExpiresAt: null,
  keyId: "k",
  keyExpiresAt: null,
};

/** The domain assembled on its own, with a fake probe in place of HTTP (deps.probe): no upstream at all. */
describe("setupModels with an injected probe", () => {
  let tdb: TestDatabase;
  let db: Database;
  let kv: KvStore;
  let models: Models;
  let client: Client<typeof ModelService>;
  const probed: ProbeTarget[] = [];
  const probe: Probe = async (target) => {
    probed.push(target);
    if (target.url.includes("down")) throw failedPrecondition("down for the test", "PROVIDER_UNREACHABLE");
    return { maxContextLength: 4096, vectorSize: target.modelType === "text-embeddings-inference" ? 384 : null };
  };

  beforeAll(async () => {
    tdb = await createTestDatabase("msetup");
    db = await openDatabase({
      url: tdb.url,
      dataDir: "/nonexistent",
      entities: [...accountEntities, ...modelEntities],
    });
    kv = createMemoryKv();
    const specs = parseModelsFile(
      `models:
  - name: small
    type: text-embeddings-inference
    providers:
      - { type: tei, url: "http://tei.test", model_name: m, key: k-1 }
      - { type: tei, url: "http://down.test", model_name: m }
`,
      "inline",
    );
    models = await setupModels({ db: db, kv, logger: pino({ level: "silent" }), specs, probe });
    client = createClient(
      ModelService,
      createRouterTransport(
        (router) => {
          router.service(ModelService, models.service);
        },
        {
          router: {
            interceptors: [
              (next) => (req) => {
                req.contextValues.set(kPrincipal, admin);
                return next(req);
              },
            ],
          },
        },
      ),
    );
  });
  afterAll(async () => {
    await models?.close();
    await kv?.close();
    await db?.close();
    await tdb?.drop();
  });

  it("bootstraps through the injected probe, skipping what it refuses", async () => {
    expect(models.bootstrap).toEqual({
      modelsCreated: 1,
      providersCreated: 1,
      skipped: ["provider http://down.test (m) of model 'small': down for the test"],
    });
    expect(probed.map((t) => [t.type, t.url, t.key, t.upstreamModel, t.modelType])).toEqual([
      ["tei", "http://tei.test", "k-1", "m", "text-embeddings-inference"],
      ["tei", "http://down.test", null, "m", "text-embeddings-inference"],
    ]);
    const resolved = await models.registry.resolve("small", admin);
    expect(resolved).toMatchObject({ maxContextLength: 4096, vectorSize: 384 });
    expect(resolved.providers.map((p) => p.key)).toEqual(["k-1"]);
  });

  it("serves CreateProvider through the injected probe, and passes its refusal on as is", async () => {
    const { model } = await client.createModel({ name: "chat", type: ModelType.TEXT_GENERATION });
    const { provider } = await client.createProvider({
      modelId: model?.id ?? "",
      type: ProviderType.OPENAI,
      url: "https://api.example.test",
      key: "sk-x",
      upstreamModel: "gpt-x",
    });
    expect(provider).toMatchObject({ type: ProviderType.OPENAI, hasKey: true, timeoutSeconds: 300 });
    expect(probed.at(-1)).toEqual({
      type: "openai",
      url: "https://api.example.test",
      key: "sk-x",
      upstreamModel: "gpt-x",
      modelType: "text-generation",
    });
    const err = await client
      .createProvider({
        modelId: model?.id ?? "",
        type: ProviderType.VLLM,
        url: "http://down.test",
        upstreamModel: "m",
      })
      .then(
        () => undefined,
        (e: ConnectError) => e,
      );
    expect(err?.code).toBe(Code.FailedPrecondition);
    expect(err?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("PROVIDER_UNREACHABLE");
  });
});
