import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatPlatform, startChatPlatform } from "../support/chat-platform.js";
import { validateOpenAI } from "../support/openai-schema.js";

/** Kept-alive connections: every REST request of an HTTP/1.1 connection shares its client-gone signal (bridge/rpc.ts). */
describe("a kept-alive connection", () => {
  let p: ChatPlatform;
  beforeAll(async () => {
    p = await startChatPlatform({ instances: 1, sim: { completionTokens: 8 } });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("serves many calls on one kept-alive connection, whose abort signal they share, leaving no listener behind", async () => {
    // Over HTTP/1.1 the bridge gives every request of a connection one signal, aborted when the connection closes
    // (bridge/rpc.ts clientGone). A call that left its abort listener on it would pile up listeners on a long-lived
    // connection: Node warns past 10 on one signal.
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    const client = new Client(p.t.httpUrl);
    let connects = 0;
    client.on("connect", () => connects++);
    const call = async (body: Record<string, unknown>) => {
      const res = await client.request({
        method: "POST",
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${p.t.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.statusCode, text: await res.body.text() };
    };
    try {
      for (let i = 0; i < 30; i++) {
        const stream = i % 3 === 0;
        const messages = [{ role: "user", content: `keep-alive ${i}` }];
        const res = await call({ model: "qwen2.5-7b", messages, stream });
        expect(res.status).toBe(200);
        if (stream) expect(res.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
        else validateOpenAI("CreateChatCompletionResponse", JSON.parse(res.text));
        // Refusals end their calls too: an unknown model, and a bad request the service sees.
        expect((await call({ model: "no-such-model", messages })).status).toBe(404);
        expect((await call({ model: "qwen2.5-7b", messages, n: -1 })).status).toBe(400);
      }
      await new Promise((r) => setImmediate(r));
      expect(connects).toBe(1);
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await client.close();
    }
  });
});
