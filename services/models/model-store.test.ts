import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.js";
import { accountEntities } from "../accounts/entities.js";
import { type AccountStore, createAccountStore } from "../accounts/index.js";
import { type Database, openDatabase } from "../platform/db/database.js";
import { modelEntities } from "./entities.js";
import { createModelStore, type ModelStore, type ProviderInput } from "./model-store.js";

async function expectCode(fn: () => Promise<unknown>, code: Code, reason?: string): Promise<ConnectError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected a rejection").toBeInstanceOf(ConnectError);
  const err = caught as ConnectError;
  expect(Code[err.code], err.message).toBe(Code[code]);
  if (reason !== undefined) expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  return err;
}

const provider = (over: Partial<ProviderInput> = {}): ProviderInput => ({
  type: "vllm",
  url: "http://upstream.test:8000",
  apiKey: null,
  upstreamModel: "org/model",
  timeoutSeconds: 300,
  weight: 1,
  maxConcurrency: 0,
  carbon: { zone: "WOR", totalParamsB: 0, activeParamsB: 0 },
  ...over,
});

describe("model store on PostgreSQL", () => {
  let tdb: TestDatabase;
  let db: Database;
  let store: ModelStore;
  let accounts: AccountStore;
  let seq = 0;
  const newModel = (
    over: { name?: string; aliases?: string[]; type?: "text-generation" | "text-embeddings-inference" } = {},
  ) =>
    store.createModel({
      name: over.name ?? `model-${++seq}`,
      aliases: over.aliases ?? [],
      type: over.type ?? "text-generation",
      costPromptPerMillion: 0.1,
      costCompletionPerMillion: 0.3,
    });
  const sql = async (query: string, params: unknown[] = []) =>
    (await db.orm()).em.fork().getConnection().execute(query, params);

  beforeAll(async () => {
    tdb = await createTestDatabase("models");
    db = await openDatabase({
      url: tdb.url,
      dataDir: "/nonexistent",
      entities: [...accountEntities, ...modelEntities],
    });
    store = createModelStore(db);
    accounts = createAccountStore(db);
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it("creates a model with aliases, and finds it by name and by each alias", async () => {
    const m = await newModel({ name: "Qwen/Qwen2.5-7B", aliases: ["qwen", "chat-default"] });
    expect(m).toMatchObject({
      name: "Qwen/Qwen2.5-7B",
      aliases: ["chat-default", "qwen"],
      type: "text-generation",
      maxContextLength: null,
      vectorSize: null,
      costPromptPerMillion: 0.1,
      costCompletionPerMillion: 0.3,
      providers: [],
      grantedRoleIds: [],
    });
    for (const n of ["Qwen/Qwen2.5-7B", "qwen", "chat-default"]) expect((await store.findByName(n))?.id).toBe(m.id);
    expect(await store.findByName("QWEN")).toBeNull();
    expect((await store.getModel(m.id))?.aliases).toEqual(["chat-default", "qwen"]);
  });

  it("keeps names and aliases in one namespace: every kind of collision is AlreadyExists", async () => {
    await newModel({ name: "ns-a", aliases: ["ns-a-alias"] });
    const cases: Array<[string, { name?: string; aliases?: string[] }, string]> = [
      ["name = name", { name: "ns-a" }, "name"],
      ["name = alias", { name: "ns-a-alias" }, "name"],
      ["alias = name", { name: "ns-b", aliases: ["ns-a"] }, "aliases"],
      ["alias = alias", { name: "ns-c", aliases: ["x", "ns-a-alias"] }, "aliases"],
    ];
    for (const [what, input, param] of cases) {
      const err = await expectCode(() => newModel(input), Code.AlreadyExists, "MODEL_NAME_TAKEN");
      expect(err.findDetails(ErrorInfoSchema)[0]?.param, what).toBe(param);
      expect(err.rawMessage, what).toMatch(/is already used by a model/);
    }
    // Nothing half-written: the failed models left no row, and their other names are free.
    expect(await store.findByName("ns-b")).toBeNull();
    expect(await store.findByName("x")).toBeNull();
    await newModel({ name: "x" });
  });

  it("is case-sensitive", async () => {
    await newModel({ name: "Case-Model" });
    const other = await newModel({ name: "case-model", aliases: ["CASE-MODEL"] });
    expect((await store.findByName("case-model"))?.id).toBe(other.id);
  });

  it("enforces the namespace in the database itself, whatever the application does", async () => {
    const m = await newModel({ name: "raw-a", aliases: ["raw-alias"] });
    // A second row for a taken name, written without the store.
    await expect(
      sql(`insert into model_name (name, model_id, alias) values ('raw-alias', ?, true)`, [m.id]),
    ).rejects.toThrow(/model_name_pkey/);
    // A model whose name is not a row of the namespace: refused at commit by the deferred foreign key.
    await expect(
      sql(
        `insert into model (id, name, type, cost_prompt_per_million, cost_completion_per_million, created_at, updated_at)
         values ('01900000-0000-7000-8000-0000000000aa', 'sneaky', 'text-generation', 0, 0, now(), now())`,
      ),
    ).rejects.toThrow(/model_name_registered/);
    // Two non-alias rows for one model.
    await expect(
      sql(`insert into model_name (name, model_id, alias) values ('raw-b', ?, false)`, [m.id]),
    ).rejects.toThrow(/model_name_one_name_per_model/);
  });

  it("renames a model and replaces its aliases atomically, even swapping a name and an alias", async () => {
    const m = await newModel({ name: "swap-a", aliases: ["swap-b", "swap-c"] });
    const u = await store.updateModel(m.id, { name: "swap-b", aliases: ["swap-a"] });
    expect(u).toMatchObject({ name: "swap-b", aliases: ["swap-a"] });
    expect((await store.findByName("swap-a"))?.id).toBe(m.id);
    expect(await store.findByName("swap-c")).toBeNull();
    expect(u?.updatedAt.getTime()).toBeGreaterThanOrEqual(m.updatedAt.getTime());

    const other = await newModel({ name: "swap-other" });
    await expectCode(
      () => store.updateModel(other.id, { aliases: ["swap-b"] }),
      Code.AlreadyExists,
      "MODEL_NAME_TAKEN",
    );
    await expectCode(() => store.updateModel(other.id, { name: "swap-a" }), Code.AlreadyExists, "MODEL_NAME_TAKEN");
    // Renaming to one of its own aliases without dropping the alias.
    const own = await expectCode(() => store.updateModel(m.id, { name: "swap-a" }), Code.InvalidArgument);
    expect(own.rawMessage).toBe("'swap-a' cannot be both the name and an alias of this model.");
    await expectCode(() => store.updateModel(m.id, { aliases: ["swap-b"] }), Code.InvalidArgument);
    // The failed updates changed nothing.
    expect(await store.getModel(other.id)).toMatchObject({ name: "swap-other", aliases: [] });
    expect(await store.getModel(m.id)).toMatchObject({ name: "swap-b", aliases: ["swap-a"] });
    expect(await store.updateModel("01900000-0000-7000-8000-000000000000", { name: "zz" })).toBeNull();
  });

  it("adopts what the first provider teaches, refuses an inconsistent one, forgets after the last goes", async () => {
    const m = await newModel({ type: "text-embeddings-inference" });
    const p1 = await store.createProvider(m.id, provider({ url: "http://a.test" }), {
      maxContextLength: 8192,
      vectorSize: 1024,
    });
    expect(p1?.id).toBeTruthy();
    expect(await store.getModel(m.id)).toMatchObject({ maxContextLength: 8192, vectorSize: 1024 });

    const err = await expectCode(
      () => store.createProvider(m.id, provider({ url: "http://b.test" }), { maxContextLength: 8192, vectorSize: 768 }),
      Code.FailedPrecondition,
      "PROVIDER_INCONSISTENT",
    );
    expect(err.rawMessage).toMatch(/vector size is 768, theirs is 1024/);
    await expectCode(
      () =>
        store.createProvider(m.id, provider({ url: "http://b.test" }), { maxContextLength: 4096, vectorSize: 1024 }),
      Code.FailedPrecondition,
      "PROVIDER_INCONSISTENT",
    );
    // Unknown values (null) do not conflict.
    const p2 = await store.createProvider(m.id, provider({ url: "http://c.test" }), {
      maxContextLength: null,
      vectorSize: 1024,
    });
    expect((await store.getModel(m.id))?.providers.map((p) => p.id)).toEqual([p1?.id, p2?.id]);

    // Same URL and upstream model twice.
    await expectCode(
      () =>
        store.createProvider(m.id, provider({ url: "http://a.test" }), { maxContextLength: 8192, vectorSize: 1024 }),
      Code.AlreadyExists,
      "PROVIDER_ALREADY_EXISTS",
    );

    // Re-pointing the only... not only provider: checked against the others; then deleting both resets the model.
    await expectCode(
      () => store.updateProvider(p2?.id ?? "", { url: "http://d.test" }, { maxContextLength: 1, vectorSize: 1024 }),
      Code.FailedPrecondition,
      "PROVIDER_INCONSISTENT",
    );
    expect(await store.deleteProvider(p1?.id ?? "")).toBe(true);
    expect(await store.getModel(m.id)).toMatchObject({ maxContextLength: 8192, vectorSize: 1024 });
    // p2 is now alone: re-pointing it replaces what the model knows.
    const moved = await store.updateProvider(
      p2?.id ?? "",
      { url: "http://d.test" },
      { maxContextLength: 512, vectorSize: 384 },
    );
    expect(moved?.url).toBe("http://d.test");
    expect(await store.getModel(m.id)).toMatchObject({ maxContextLength: 512, vectorSize: 384 });
    expect(await store.deleteProvider(p2?.id ?? "")).toBe(true);
    expect(await store.getModel(m.id)).toMatchObject({ maxContextLength: null, vectorSize: null, providers: [] });
    expect(await store.deleteProvider(p2?.id ?? "")).toBe(false);
  });

  it("keeps the key as given, but never in serialized form", async () => {
    const m = await newModel();
    const p = await store.createProvider(m.id, provider({ apiKey: "sk-upstream-very-secret" }), {
      maxContextLength: null,
      vectorSize: null,
    });
    const read = await store.getProvider(p?.id ?? "");
    expect(read?.apiKey).toBe("sk-upstream-very-secret");
    expect(JSON.stringify(read)).not.toContain("sk-upstream-very-secret");
    const resolved = await store.findByName(m.name);
    expect(resolved?.providers[0]?.apiKey).toBe("sk-upstream-very-secret");
  });

  it("refuses a type change while the model has providers", async () => {
    const m = await newModel();
    expect((await store.updateModel(m.id, { type: "text-embeddings-inference" }))?.type).toBe(
      "text-embeddings-inference",
    );
    await store.createProvider(m.id, provider(), { maxContextLength: null, vectorSize: 8 });
    await expectCode(
      () => store.updateModel(m.id, { type: "text-generation" }),
      Code.FailedPrecondition,
      "MODEL_HAS_PROVIDERS",
    );
  });

  it("grants idempotently, revokes, and follows role and model deletions (ON DELETE CASCADE)", async () => {
    const role = await accounts.createRole(`role-${++seq}`, []);
    const m = await newModel();
    const g1 = await store.grant(role.id, m.id);
    const g2 = await store.grant(role.id, m.id);
    expect(g2?.id).toBe(g1?.id);
    expect((await store.getModel(m.id))?.grantedRoleIds).toEqual([role.id]);
    expect(await store.grant("01900000-0000-7000-8000-000000000000", m.id)).toBeNull();
    expect((await store.listModels({ limit: 10 }, { grantedTo: role.id })).map((x) => x.id)).toEqual([m.id]);

    expect((await store.revoke(role.id, m.id))?.id).toBe(g1?.id);
    expect(await store.revoke(role.id, m.id)).toBeNull();
    expect(await store.listModels({ limit: 10 }, { grantedTo: role.id })).toEqual([]);

    await store.grant(role.id, m.id);
    expect(await accounts.deleteRole(role.id)).toBe(true);
    expect((await store.getModel(m.id))?.grantedRoleIds).toEqual([]);

    const role2 = await accounts.createRole(`role-${++seq}`, []);
    await store.grant(role2.id, m.id);
    await store.createProvider(m.id, provider({ url: "http://del.test" }), {
      maxContextLength: null,
      vectorSize: null,
    });
    expect(await store.deleteModel(m.id)).toBe(true);
    const [left] = await sql(
      `select (select count(*) from model_grant where model_id = ?) as g, (select count(*) from provider where model_id = ?) as p,
              (select count(*) from model_name where model_id = ?) as n`,
      [m.id, m.id, m.id],
    );
    expect(left).toEqual({ g: "0", p: "0", n: "0" });
    expect(await store.deleteModel(m.id)).toBe(false);
  });

  it("pages models and providers by id, with name and model filters", async () => {
    const ms = [
      await newModel({ name: "page-1" }),
      await newModel({ name: "page-2" }),
      await newModel({ name: "page-3" }),
    ];
    const first = await store.listModelDetails({ limit: 2 }, { name: "page-" });
    expect(first.map((m) => m.name)).toEqual(["page-1", "page-2"]);
    const next = await store.listModelDetails({ limit: 2, after: first[1]?.id }, { name: "page-" });
    expect(next.map((m) => m.name)).toEqual(["page-3"]);
    // `%` and `_` are literal in the filter.
    expect(await store.listModelDetails({ limit: 10 }, { name: "page%" })).toEqual([]);

    const ids = [];
    for (const u of ["http://p1.test", "http://p2.test"]) {
      ids.push(
        (
          await store.createProvider(ms[0]?.id ?? "", provider({ url: u }), {
            maxContextLength: null,
            vectorSize: null,
          })
        )?.id,
      );
    }
    expect((await store.listProviders({ limit: 10 }, { modelId: ms[0]?.id })).map((p) => p.id)).toEqual(ids);
    expect((await store.listProviders({ limit: 1, after: ids[0] }, { modelId: ms[0]?.id })).map((p) => p.id)).toEqual([
      ids[1],
    ]);
  });
});
