import { createCanvas } from "@napi-rs/canvas";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateOpenAI } from "../support/openai-schema.js";
import { planChoices, planText } from "./generation.js";
import { type Simulator, startSimulator } from "./simulator.js";
import { SseReader } from "./sse.js";
import { countChatPromptTokens } from "./text.js";
import { imagesOf, pngSize, shortHash, visionMarkdown, visionPlans } from "./vision.js";

/** A real PNG of the given size (drawn, so that two sizes also differ in bytes). */
async function png(width: number, height: number, label = ""): Promise<Buffer> {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = "black";
  ctx.fillText(label, 2, 10);
  return canvas.encode("png");
}

const dataUrl = (bytes: Buffer, mime = "image/png") => `data:${mime};base64,${bytes.toString("base64")}`;

const visionBody = (urls: string[], extra: Record<string, unknown> = {}) => ({
  model: "sim-chat",
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "Transcribe." },
        ...urls.map((url) => ({ type: "image_url", image_url: { url } })),
      ],
    },
  ],
  ...extra,
});

const generation = {
  seedText: "x",
  n: 1,
  natural: 16,
  limit: 1000,
  stop: [],
  tool: null,
  logprobs: false,
  topLogprobs: 0,
};

describe("simulator vision (pure)", () => {
  it("reads a PNG's size from its header, and nothing from other bytes", async () => {
    expect(pngSize(await png(31, 17))).toEqual({ width: 31, height: 17 });
    expect(pngSize(Buffer.from("not an image at all, just text"))).toBeNull();
  });

  it("takes the data-URL images of the last user message only, in order", async () => {
    const [a, b, c] = await Promise.all([png(10, 10, "a"), png(20, 10, "b"), png(30, 10, "c")]);
    const body = {
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: dataUrl(a as Buffer) } }] },
        { role: "assistant", content: "ok" },
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: dataUrl(b as Buffer) } },
            { type: "image_url", image_url: { url: "https://example.org/remote.png" } },
            { type: "image_url", image_url: { url: dataUrl(c as Buffer, "image/jpeg") } },
          ],
        },
      ],
    };
    const seen = imagesOf(body);
    expect(seen.map((i) => i.mime)).toEqual(["image/png", "image/jpeg"]);
    expect(seen[0]?.bytes.equals(b as Buffer)).toBe(true);
    expect(seen[1]?.bytes.equals(c as Buffer)).toBe(true);
  });

  it("writes one section per image with its type, size and hash", async () => {
    const a = await png(40, 25);
    expect(visionMarkdown([{ mime: "image/png", bytes: a }])).toBe(
      `# Page\n\nImage image/png, 40x25 px, sha256 ${shortHash(a)}.`,
    );
    const two = visionMarkdown([
      { mime: "image/png", bytes: a },
      { mime: "image/webp", bytes: Buffer.from("RIFF....WEBP") },
    ]);
    expect(two).toMatch(
      /^# Page 1\n\nImage image\/png, 40x25 px, .*\n\n# Page 2\n\nImage image\/webp, size unknown, /s,
    );
  });

  it("leaves requests without data-URL images (or with a forced tool call) to ordinary generation", async () => {
    expect(visionPlans({ messages: [{ role: "user", content: "hello" }] }, generation)).toBeNull();
    expect(visionPlans(visionBody(["https://example.org/a.png"]), generation)).toBeNull();
    const tool = { name: "f", parameters: { type: "object" } };
    expect(visionPlans(visionBody([dataUrl(await png(5, 5))]), { ...generation, tool })).toBeNull();
  });

  it("cuts the transcription at the token limit with finish_reason length, for every choice", async () => {
    const body = visionBody([dataUrl(await png(5, 5))]);
    const full = visionPlans(body, { ...generation, n: 2 });
    expect(full?.map((c) => [c.index, c.finishReason])).toEqual([
      [0, "stop"],
      [1, "stop"],
    ]);
    const cut = visionPlans(body, { ...generation, limit: 3 });
    expect(cut?.[0]?.completionTokens).toBe(3);
    expect(cut?.[0]?.finishReason).toBe("length");
    expect(planText(cut?.[0] as never)).toBe(planText(full?.[0] as never).slice(0, 18));
  });
});

describe("simulator vision (over HTTP)", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("answers an image request with the image's Markdown, in OpenAI's shape, counting 85 tokens per image", async () => {
    const img = await png(64, 48, "hello");
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(visionBody([dataUrl(img)])),
    });
    const json = (await res.json()) as {
      choices: { message: { content: string } }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(res.status).toBe(200);
    validateOpenAI("CreateChatCompletionResponse", json);
    const expected = visionMarkdown([{ mime: "image/png", bytes: img }]);
    expect(json.choices[0]?.message.content).toBe(expected);
    expect(expected).toContain("64x48 px");
    expect(json.usage.completion_tokens).toBe(Math.ceil(expected.length / 6));
    // The same message without its image, plus a flat 85 for the image.
    expect(json.usage.prompt_tokens).toBe(countChatPromptTokens([{ role: "user", content: "Transcribe." }]) + 85);
  });

  it("streams the same Markdown", async () => {
    const img = await png(12, 34);
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(visionBody([dataUrl(img)], { stream: true })),
    });
    const frames = (await new SseReader(res).all()).filter((f) => f.kind === "data" && f.data !== "[DONE]");
    const text = frames
      .map((f) => (f.kind === "data" ? JSON.parse(f.data) : null))
      .map((c) => c.choices[0]?.delta?.content ?? "")
      .join("");
    expect(text).toBe(visionMarkdown([{ mime: "image/png", bytes: img }]));
  });

  it("answers text-only requests exactly as before (ordinary generation)", async () => {
    const body = { model: "sim-chat", messages: [{ role: "user", content: "Bonjour" }] };
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { choices: { message: { content: string } }[] };
    const plans = planChoices({ ...generation, seedText: `${JSON.stringify(body.messages)}\u0000`, limit: 8192 });
    expect(json.choices[0]?.message.content).toBe(planText(plans[0] as never));
  });
});
