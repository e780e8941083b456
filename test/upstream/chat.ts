import { type ChatRequest, parseChatRequest } from "./chat-request.js";
import { type RequestContext, sleep, waitForever, writeChunk } from "./context.js";
import { type ChoicePlan, planChoices, planText } from "./generation.js";
import { sendJson, vllmErrorBody } from "./http.js";
import { randomId } from "./text.js";
import { visionPlans } from "./vision.js";

/**
 * `POST /v1/chat/completions` as vLLM answers it. Streams: headers at once (vLLM returns its StreamingResponse
 * before the engine produces anything), then after the time to first token the role chunk of each choice and the
 * first token, one chunk per token and choice, the last token's chunk carrying `finish_reason` (vLLM does not send
 * a separate empty chunk for it, unlike OpenAI), the usage chunk when asked, `data: [DONE]`.
 */
export async function handleChat(ctx: RequestContext, body: unknown): Promise<void> {
  const req = parseChatRequest(body, ctx.opts);
  ctx.setModel(req.model.id);
  // Data-URL images in the last user message: an answer read from them (vision.ts); otherwise generated text.
  const plans = visionPlans(body, req.generation) ?? planChoices(req.generation);
  const completionTokens = plans.reduce((s, c) => s + c.completionTokens, 0);
  const base = {
    id: `chatcmpl-${randomId()}`,
    created: Math.floor(Date.now() / 1000),
    model: req.modelName,
  };
  if (req.stream) {
    await stream(ctx, req, plans, base);
  } else {
    await unary(ctx, req, plans, base);
  }
  ctx.recordDone(req.model.id, req.promptTokens, completionTokens, plans[0]?.finishReason ?? "stop");
}

interface Base {
  id: string;
  created: number;
  model: string;
}

/** Chunks each choice streams (at least one, to carry its finish_reason). */
const chunkCount = (c: ChoicePlan) => Math.max(1, c.pieces.length);

function usage(ctx: RequestContext, prompt: number, completion: number): Record<string, unknown> {
  const u: Record<string, unknown> = {
    prompt_tokens: prompt,
    total_tokens: prompt + completion,
    completion_tokens: completion,
  };
  if (ctx.opts.vllmQuirks) u.prompt_tokens_details = null;
  return u;
}

function logprobsObject(ctx: RequestContext, content: unknown[]): Record<string, unknown> {
  return ctx.opts.vllmQuirks ? { content } : { content, refusal: null };
}

async function unary(ctx: RequestContext, req: ChatRequest, plans: ChoicePlan[], base: Base): Promise<void> {
  const { opts, cancel } = ctx;
  const release = await ctx.acquireSlot(req.model.id);
  try {
    const total = plans.reduce((s, c) => s + chunkCount(c), 0);
    const steps = Math.max(...plans.map(chunkCount));
    if (opts.stallAfter !== null && opts.stallAfter < total) await waitForever(cancel);
    if (opts.midStreamErrorAfter !== null && opts.midStreamErrorAfter < total) {
      await sleep(opts.ttftMs + opts.midStreamErrorAfter * opts.interTokenMs, cancel);
      sendJson(ctx.res, 500, vllmErrorBody(opts.errorShape, 500, "Internal server error", null));
      return;
    }
    await sleep(opts.ttftMs + (steps - 1) * opts.interTokenMs, cancel);
  } finally {
    release();
  }
  const q = opts.vllmQuirks;
  const choices = plans.map((c) => {
    const message: Record<string, unknown> = {
      role: "assistant",
      content: c.toolCall ? "" : planText(c),
      refusal: null,
    };
    if (q) Object.assign(message, { annotations: null, audio: null, function_call: null, reasoning: null });
    if (c.toolCall) {
      const { id, name, arguments: args } = c.toolCall;
      message.tool_calls = [{ id, type: "function", function: { name, arguments: args } }];
    }
    return {
      index: c.index,
      message,
      logprobs: c.logprobs ? logprobsObject(ctx, c.logprobs) : null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
    };
  });
  const completion = plans.reduce((s, c) => s + c.completionTokens, 0);
  const response: Record<string, unknown> = {
    id: base.id,
    object: "chat.completion",
    created: base.created,
    model: base.model,
    choices,
    service_tier: null,
  };
  if (q) response.system_fingerprint = null;
  if (!opts.omitUsage) response.usage = usage(ctx, req.promptTokens, completion);
  response.prompt_logprobs = null;
  if (q) response.prompt_token_ids = null;
  response.kv_transfer_params = null;
  sendJson(ctx.res, 200, response);
}

function tokenDelta(c: ChoicePlan, step: number): Record<string, unknown> {
  const piece = c.pieces[step] ?? "";
  if (!c.toolCall) return { content: piece };
  if (step > 0) return { tool_calls: [{ index: 0, function: { arguments: piece } }] };
  const { id, name } = c.toolCall;
  return { tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: piece } }] };
}

async function stream(ctx: RequestContext, req: ChatRequest, plans: ChoicePlan[], base: Base): Promise<void> {
  const { res, opts, cancel } = ctx;
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
  res.flushHeaders();
  const ping = opts.pingEveryMs ? setInterval(() => res.write(": ping\n\n"), opts.pingEveryMs) : undefined;
  // Without inter-token latency every frame is ready at once: one write, not one syscall per frame.
  const batch = opts.interTokenMs <= 0;
  let pending = "";
  const out = (text: string) => {
    if (batch) pending += text;
    return batch ? undefined : writeChunk(res, text, cancel);
  };
  const flush = async () => {
    if (pending === "") return;
    const text = pending;
    pending = "";
    await writeChunk(res, text, cancel);
  };
  /** The last frame and the end of the chunked body in one write. */
  const finish = (text: string) => {
    res.end(pending + text);
    pending = "";
  };
  const send = (payload: unknown) => out(`data: ${JSON.stringify(payload)}\n\n`);
  // Every chunk starts the same (vLLM's key order): serialize that once.
  const head =
    `data: {"id":${JSON.stringify(base.id)},"object":"chat.completion.chunk","created":${base.created},` +
    `"model":${JSON.stringify(base.model)},"choices":[`;
  const chunk = (choices: unknown[], extra?: Record<string, unknown>) => {
    const tail = extra ? `,${JSON.stringify(extra).slice(1, -1)}` : "";
    return out(`${head}${choices.map((c) => JSON.stringify(c)).join(",")}]${tail}}\n\n`);
  };
  const release = await ctx.acquireSlot(req.model.id);
  try {
    await sleep(opts.ttftMs, cancel);
    // Steady steps like an engine's: a token is due interTokenMs after the previous one was due (the time spent
    // writing is not added); a late one goes at once and the pace restarts from it, never catching up in a burst.
    let due = performance.now();
    for (const c of plans) {
      await chunk([{ index: c.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
    }
    const steps = Math.max(...plans.map(chunkCount));
    const generated = plans.map(() => 0);
    let emitted = 0;
    for (let step = 0; step < steps; step++) {
      if (step > 0 && !batch) {
        due += opts.interTokenMs;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait, cancel);
        else due = performance.now();
      }
      for (const c of plans) {
        if (step >= chunkCount(c)) continue;
        if (opts.stallAfter !== null && emitted >= opts.stallAfter) {
          await flush();
          await waitForever(cancel);
        }
        if (opts.midStreamErrorAfter !== null && emitted >= opts.midStreamErrorAfter) {
          await send(vllmErrorBody(opts.errorShape, 500, "Internal server error", null, "InternalServerError"));
          finish("data: [DONE]\n\n");
          return;
        }
        const last = step === chunkCount(c) - 1;
        const lp = c.logprobs?.[step];
        const choice: Record<string, unknown> = {
          index: c.index,
          delta: tokenDelta(c, step),
          logprobs: lp ? logprobsObject(ctx, [lp]) : null,
          finish_reason: last ? c.finishReason : null,
        };
        if (last) choice.stop_reason = c.stopReason;
        generated[c.index] = last ? c.completionTokens : step + 1;
        const sum = generated.reduce((s, g) => s + g, 0);
        await chunk([choice], req.continuousUsage ? { usage: usage(ctx, req.promptTokens, sum) } : undefined);
        emitted++;
      }
    }
    if (req.includeUsage && !opts.omitUsage) {
      const completion = plans.reduce((s, c) => s + c.completionTokens, 0);
      await chunk([], { usage: usage(ctx, req.promptTokens, completion) });
    }
    finish("data: [DONE]\n\n");
  } finally {
    clearInterval(ping);
    release();
  }
}
