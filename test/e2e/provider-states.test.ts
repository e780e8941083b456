import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, createMember, createRole, writeModelsFile } from "../support/governance.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";

type State = { object: string; provider: string; in_flight: number; waiting: number; healthy: boolean };

/**
 * The admins' provider states list the registry's providers — every one, from the start, before its first request,
 * and no longer one that was deleted — with their routing state; only admins may read them.
 */
describe("provider states", () => {
  let sims: Simulator[];
  let t: TestPlatform;
  let dir: string;
  const admin = (method: string, route: string) => call(t.httpUrl, method, route, { key: t.adminKey });
  const states = async () => {
    const res = await admin("GET", "/v1/admin/provider-states");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.data as State[];
  };
  const providerIds = async () => {
    const res = await admin("GET", "/v1/admin/providers?limit=100");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body.data as { id: string }[]).map((p) => p.id).sort();
  };

  beforeAll(async () => {
    sims = await Promise.all([startSimulator(), startSimulator()]);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-states-"));
    const file = await writeModelsFile(dir, [
      { name: "st-chat", type: "text-generation", urls: sims.map((s) => s.url), upstreamModel: "sim-chat" },
      { name: "st-embed", type: "text-embeddings-inference", urls: [sims[0]?.url ?? ""], upstreamModel: "sim-embed" },
    ]);
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file } });
  });
  afterAll(async () => {
    await t?.close();
    for (const s of sims ?? []) await s.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("lists every provider before any traffic, healthy and idle", async () => {
    const ids = await providerIds();
    expect(ids).toHaveLength(3);
    const listed = await states();
    expect(listed.map((s) => s.provider).sort()).toEqual(ids);
    for (const s of listed)
      expect(s).toMatchObject({ object: "provider.state", in_flight: 0, waiting: 0, healthy: true });
  });

  it("drops a deleted provider, and keeps the others' state", async () => {
    const chat = await call(t.httpUrl, "POST", "/v1/chat/completions", {
      key: t.adminKey,
      body: { model: "st-chat", messages: [{ role: "user", content: "hi" }] },
    });
    expect(chat.status, JSON.stringify(chat.body)).toBe(200);
    const [gone, ...kept] = await providerIds();
    const del = await admin("DELETE", `/v1/admin/providers/${gone}`);
    expect(del.status, JSON.stringify(del.body)).toBeLessThan(300);
    const listed = await states();
    expect(listed.map((s) => s.provider).sort()).toEqual(kept);
  });

  it("are for admins only", async () => {
    const member = await createMember(t.httpUrl, t.adminKey, await createRole(t.httpUrl, t.adminKey));
    const res = await call(t.httpUrl, "GET", "/v1/admin/provider-states", { key: member.keys[0] });
    expect(res.status).toBe(403);
  });
});
