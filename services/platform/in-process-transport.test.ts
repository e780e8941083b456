import { Code, ConnectError, createClient, createContextKey, type Interceptor } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/passerelle/errors/v1/error_info_pb.js";
import {
  InferenceService,
  type StreamChatCompletionResponse,
} from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { rpcError } from "./errors.js";
import { bindService, createInProcessTransport } from "./in-process-transport.js";

const kCaller = createContextKey("", { description: "caller" });

/** Sets a context value from a header and a response header, as the platform's interceptors do. */
const stamp: Interceptor = (next) => async (req) => {
  req.contextValues.set(kCaller, req.header.get("x-caller") ?? "");
  const res = await next(req);
  res.header.set("x-stamped", "yes");
  return res;
};

function chunk(id: string): StreamChatCompletionResponse {
  return { $typeName: "passerelle.inference.v1.StreamChatCompletionResponse", chunk: { id } } as never;
}

function setup(
  impl: Partial<Parameters<typeof bindService<typeof InferenceService>>[1]>,
  interceptors: Interceptor[] = [stamp],
) {
  const transport = createInProcessTransport([bindService(InferenceService, impl as never)], { interceptors });
  return createClient(InferenceService, transport);
}

const ticks = (n: number) => new Promise((r) => setTimeout(r, n));

describe("in-process transport", () => {
  it("runs the server interceptors around a unary call and returns the handler's message by reference", async () => {
    let seen = "";
    const client = setup({
      async listProviderStates(_req, ctx) {
        seen = ctx.values.get(kCaller);
        ctx.responseHeader.set("x-handler", "1");
        return { states: [{ providerId: "p1", inFlight: 2 }] };
      },
    });
    let header: Headers | undefined;
    const res = await client.listProviderStates(
      {},
      { headers: { "x-caller": "alice" }, onHeader: (h) => (header = h) },
    );
    expect(seen).toBe("alice");
    expect(res.$typeName).toBe("passerelle.inference.v1.ListProviderStatesResponse");
    expect(res.states[0]?.providerId).toBe("p1");
    expect(res.states[0]?.inFlight).toBe(2);
    expect(header?.get("x-stamped")).toBe("yes");
    expect(header?.get("x-handler")).toBe("1");
  });

  it("passes ConnectErrors with their details through, and turns other errors into Internal", async () => {
    const client = setup({
      async listProviderStates(_req, ctx) {
        if (ctx.values.get(kCaller) === "bad") throw new TypeError("boom");
        throw rpcError(Code.ResourceExhausted, "slow down", "RATE_LIMITED", { retryAfterSeconds: 3 });
      },
    });
    const e1 = await client.listProviderStates({}).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ConnectError);
    expect((e1 as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((e1 as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
    const e2 = await client.listProviderStates({}, { headers: { "x-caller": "bad" } }).catch((e: unknown) => e);
    expect((e2 as ConnectError).code).toBe(Code.Internal);
  });

  it("streams messages in order; a caller that stops early and aborts ends the implementation", async () => {
    let finished = false;
    const client = setup({
      async *streamChatCompletion() {
        try {
          for (let i = 0; i < 100; i++) yield chunk(`c${i}`);
        } finally {
          finished = true;
        }
      },
    });
    // Connect's clients drop `return()` from the iterator they hand out: stopping early is signalled by aborting.
    const ac = new AbortController();
    const ids: string[] = [];
    for await (const m of client.streamChatCompletion({}, { signal: ac.signal })) {
      ids.push(m.chunk?.id ?? "");
      if (ids.length === 3) break;
    }
    expect(finished).toBe(false);
    ac.abort();
    expect(ids).toEqual(["c0", "c1", "c2"]);
    await ticks(5);
    expect(finished).toBe(true);

    const all: string[] = [];
    for await (const m of client.streamChatCompletion({})) all.push(m.chunk?.id ?? "");
    expect(all).toHaveLength(100);
    expect(all[99]).toBe("c99");
  });

  it("a caller's abort ends a pending read with Canceled and reaches the implementation's signal", async () => {
    let implSignal: AbortSignal | undefined;
    let finished = false;
    const client = setup({
      async *streamChatCompletion(_req, ctx) {
        implSignal = ctx.signal;
        try {
          yield chunk("first");
          await new Promise(() => {}); // an implementation that ignores its signal still ends for the caller
        } finally {
          finished = true;
        }
      },
    });
    const ac = new AbortController();
    const it = client.streamChatCompletion({}, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value?.chunk?.id).toBe("first");
    const pending = it.next();
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    expect(implSignal?.aborted).toBe(true);
    expect(finished).toBe(false); // a generator stuck in an await cannot run its finally; the caller is free anyway

    const unaryAc = new AbortController();
    const slow = setup({ listProviderStates: () => new Promise(() => {}) });
    const call = slow.listProviderStates({}, { signal: unaryAc.signal });
    unaryAc.abort();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
  });

  it("a caller that left while an interceptor awaited: Canceled, and the started handler's failure is observed", async () => {
    // An interceptor awaiting I/O (the key lookup of an auth-cache miss) while the client goes away: the handler is
    // started with an aborted signal, and fails later. Unobserved, that rejection would end the process.
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => void unhandled.push(err);
    process.on("unhandledRejection", onUnhandled);
    try {
      const ac = new AbortController();
      const slowAuth: Interceptor = (next) => async (req) => {
        ac.abort();
        await ticks(1);
        return next(req);
      };
      const client = setup(
        {
          async listProviderStates() {
            await ticks(5);
            throw new ConnectError("upstream aborted", Code.Canceled);
          },
        },
        [slowAuth],
      );
      await expect(client.listProviderStates({}, { signal: ac.signal })).rejects.toMatchObject({ code: Code.Canceled });
      await ticks(30);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a timeout gives DeadlineExceeded; an unknown method gives Unimplemented", async () => {
    const client = setup({ listProviderStates: () => new Promise(() => {}) });
    await expect(client.listProviderStates({}, { timeoutMs: 20 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    await expect(client.createChatCompletion({})).rejects.toMatchObject({ code: Code.Unimplemented });
  });

  it("errors thrown by a stream after its first message reach the caller as ConnectErrors", async () => {
    const client = setup({
      async *streamChatCompletion() {
        yield chunk("one");
        throw new ConnectError("upstream died", Code.Unavailable);
      },
    });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const m of client.streamChatCompletion({})) seen.push(m.chunk?.id ?? "");
    })().catch((e: unknown) => e);
    expect(seen).toEqual(["one"]);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
  });
});
