import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wavFile } from "../support/audio.js";
import { call, createMember, createRole, type Member } from "../support/governance.js";
import { validateOpenAI } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type Simulator, startSimulator } from "../upstream/simulator.js";
import { DEFAULT_MODELS } from "../upstream/types.js";

interface Row {
  request_id: string;
  user_id: string;
  model: string;
  endpoint: string;
  status: number;
  error_code: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_nanos: string;
  provider_id: string | null;
}

/**
 * "Exactly one usage record per request, successes and failures alike" for requests refused before their admission:
 * a bad request, an unknown, hidden or wrong-type model, a file that is not audio. Each leaves one record (its status,
 * no tokens, no cost, the model as asked) in the real ledger; a request without a valid key leaves none; a refusal
 * by the limits is recorded once (by the governor), not twice.
 */
describe("usage records of requests refused before admission", { timeout: 60_000 }, () => {
  let sim: Simulator;
  let t: TestPlatform;
  let dir: string;
  let member: Member;
  let db: pg.Client;
  let serial = 0;

  beforeAll(async () => {
    sim = await startSimulator({
      models: [
        ...DEFAULT_MODELS,
        { id: "sim-whisper", maxModelLen: 448, kind: "transcription" },
        { id: "sim-rerank", maxModelLen: 512, kind: "rerank" },
      ],
    });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-refusals-"));
    const file = path.join(dir, "models.yaml");
    const model = (name: string, type: string, upstream: string, aliases = "") => [
      `  - name: ${name}`,
      ...(aliases ? [`    aliases: [${aliases}]`] : []),
      `    type: ${type}`,
      "    providers:",
      `      - { type: vllm, url: "${sim.url}", model_name: ${upstream} }`,
    ];
    await fs.writeFile(
      file,
      [
        "models:",
        ...model("ref-chat", "text-generation", "sim-chat", "ref-chat-alias"),
        ...model("ref-hidden", "text-generation", "sim-chat"),
        ...model("ref-throttled", "text-generation", "sim-chat"),
        ...model("ref-embed", "text-embeddings-inference", "sim-embed"),
        ...model("ref-rerank", "text-classification", "sim-rerank"),
        ...model("ref-whisper", "automatic-speech-recognition", "sim-whisper"),
        "",
      ].join("\n"),
    );
    t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file } });
    const role = await createRole(t.httpUrl, t.adminKey, {
      "ref-chat": {},
      "ref-hidden": { requests_per_minute: 0 },
      "ref-throttled": { requests_per_minute: 1 },
      "ref-embed": {},
      "ref-rerank": {},
      "ref-whisper": {},
    });
    member = await createMember(t.httpUrl, t.adminKey, role);
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await t?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** A JSON POST as the member (or with `key`), under a request id of its own; returns the answer and that id. */
  async function post(route: string, body: unknown, key: string | undefined = member.keys[0]) {
    const requestId = `refusal-${process.pid}-${++serial}`;
    const res = await call(t.httpUrl, "POST", route, { key, body, headers: { "x-request-id": requestId } });
    return { ...res, requestId };
  }

  /** The ledger's records of `requestId`, once it holds `n` of them (the journal flushes every second). */
  async function recordsOf(requestId: string, n: number): Promise<Row[]> {
    let rows: Row[] = [];
    for (let end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      ({ rows } = await db.query<Row>("select * from usage_record where request_id = $1", [requestId]));
      if (rows.length >= n) break;
    }
    return rows;
  }

  /** Exactly one record for `requestId`: this status and endpoint, the model as asked, no tokens, no cost. */
  async function expectOneRefusal(requestId: string, want: { status: number; endpoint: string; model: string }) {
    const rows = await recordsOf(requestId, 1);
    // A second record would be journaled at the same moment as the first: give it the flush interval to show.
    await new Promise((r) => setTimeout(r, 1_200));
    const again = await recordsOf(requestId, 1);
    expect(again, `${requestId}: ${JSON.stringify(want)}`).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: member.id,
      ...want,
      prompt_tokens: 0,
      completion_tokens: 0,
      cost_nanos: "0",
      provider_id: null,
    });
  }

  const chat = (model: string, extra: Record<string, unknown> = {}) => ({
    model,
    messages: [{ role: "user", content: "hello" }],
    ...extra,
  });

  it("records an unknown model, a hidden one (limit 0) and a model of the wrong type as the caller named it", async () => {
    const unknown = await post("/v1/chat/completions", chat("no-such-model"));
    const hidden = await post("/v1/chat/completions", chat("ref-hidden"));
    const wrongType = await post("/v1/embeddings", { model: "ref-chat-alias", input: "hello" });
    for (const [r, status] of [
      [unknown, 404],
      [hidden, 403],
      [wrongType, 400],
    ] as const) {
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      validateOpenAI("ErrorResponse", r.body);
    }
    await expectOneRefusal(unknown.requestId, { status: 404, endpoint: "chat.completions", model: "no-such-model" });
    await expectOneRefusal(hidden.requestId, { status: 403, endpoint: "chat.completions", model: "ref-hidden" });
    await expectOneRefusal(wrongType.requestId, { status: 400, endpoint: "embeddings", model: "ref-chat-alias" });
  });

  it("records bad requests on every model-facing endpoint, streamed chat included", async () => {
    const cases = [
      { route: "/v1/chat/completions", body: chat("ref-chat", { n: 0 }), endpoint: "chat.completions" },
      { route: "/v1/chat/completions", body: chat("ref-chat", { stream: true, n: 0 }), endpoint: "chat.completions" },
      { route: "/v1/embeddings", body: { model: "ref-embed", input: "" }, endpoint: "embeddings" },
      // (An empty `documents` is refused by the REST layer's schema, before any key is checked: no record.)
      { route: "/v1/rerank", body: { model: "ref-chat", query: "q", documents: ["d"] }, endpoint: "rerank" },
    ];
    const answers = await Promise.all(cases.map((c) => post(c.route, c.body)));
    for (const [i, r] of answers.entries()) {
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      const c = cases[i] as (typeof cases)[number];
      await expectOneRefusal(r.requestId, { status: 400, endpoint: c.endpoint, model: c.body.model });
    }
  });

  it("records an upload that is not audio", async () => {
    const form = new FormData();
    form.append("file", new Blob([new TextEncoder().encode("not audio at all")]), "a.wav");
    form.append("model", "ref-whisper");
    const requestId = `refusal-${process.pid}-${++serial}`;
    const res = await fetch(`${t.httpUrl}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${member.keys[0]}`, "x-request-id": requestId },
      body: form,
    });
    expect(res.status, await res.text()).toBe(400);
    await expectOneRefusal(requestId, { status: 400, endpoint: "audio.transcriptions", model: "ref-whisper" });
    // The same file as audio is served: the refusal was the file's, not the model's.
    const good = new FormData();
    good.append("file", new Blob([wavFile(1)]), "a.wav");
    good.append("model", "ref-whisper");
    const served = await fetch(`${t.httpUrl}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${member.keys[0]}` },
      body: good,
    });
    expect(served.status, await served.text()).toBe(200);
  });

  it("keeps a model name the ledger could not hold within its column, without control characters", async () => {
    const name = `x\u0000y${"z".repeat(400)}`;
    const r = await post("/v1/chat/completions", chat(name));
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    await expectOneRefusal(r.requestId, { status: 404, endpoint: "chat.completions", model: `xy${"z".repeat(198)}` });
  });

  it("records nothing for a request without a valid key, and a limit's refusal once", async () => {
    const anonymous = await post("/v1/chat/completions", chat("ref-chat"), "sk-not-a-key");
    expect(anonymous.status).toBe(401);
    const first = await post("/v1/chat/completions", chat("ref-throttled"));
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const throttled = await post("/v1/chat/completions", chat("ref-throttled"));
    expect(throttled.status, JSON.stringify(throttled.body)).toBe(429);
    await expectOneRefusal(throttled.requestId, { status: 429, endpoint: "chat.completions", model: "ref-throttled" });
    const served = await recordsOf(first.requestId, 1);
    expect(served.map((r) => r.status)).toEqual([200]);
    // Journaled before the throttled request's record, had it been: that one is in the ledger now.
    const { rows } = await db.query("select id from usage_record where request_id = $1", [anonymous.requestId]);
    expect(rows).toEqual([]);
  });
});
