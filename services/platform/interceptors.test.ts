import { Code, ConnectError, createClient } from "@connectrpc/connect";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { InferenceService } from "../../gen/passerelle/inference/v1/inference_service_pb.js";
import { kPrincipal, kRequestId, type Principal } from "./context.js";
import { permissionDenied } from "./errors.js";
import { bindService, createInProcessTransport } from "./in-process-transport.js";
import { createRequestContextInterceptor } from "./interceptors.js";

/** A client over the in-process transport with the request-context interceptor, and the log lines it wrote. */
function setup(impl: Partial<Parameters<typeof bindService<typeof InferenceService>>[1]>) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const transport = createInProcessTransport([bindService(InferenceService, impl as never)], {
    interceptors: [createRequestContextInterceptor(logger)],
  });
  return { client: createClient(InferenceService, transport), lines };
}

const RPC = "passerelle.inference.v1.InferenceService/ListProviderStates";

/** The end of the event-loop turn: a call's "rpc ok" line is written then, after its answer went out. */
const turnOver = () => new Promise((resolve) => setImmediate(resolve));

describe("request context interceptor", () => {
  it("gives the call a request id and writes one line with it, the RPC, the time and the user", async () => {
    let seenId = "";
    const { client, lines } = setup({
      async listProviderStates(_req, ctx) {
        seenId = ctx.values.get(kRequestId);
        ctx.values.set(kPrincipal, { userId: "user-1" } as Principal);
        return {};
      },
    });
    let echoed: string | null = null;
    await client.listProviderStates(
      {},
      { headers: { "x-request-id": "req-42" }, onHeader: (h) => (echoed = h.get("x-request-id")) },
    );
    expect(seenId).toBe("req-42");
    expect(echoed).toBe("req-42");
    expect(lines).toHaveLength(0);
    await turnOver();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: "rpc ok", reqId: "req-42", rpc: RPC, userId: "user-1" });
    expect(typeof lines[0]?.ms).toBe("number");

    // A malformed id is replaced by a fresh one; two calls of the same method log the same `rpc`.
    await client.listProviderStates({}, { headers: { "x-request-id": "bad id!" } });
    await turnOver();
    expect(lines[1]?.reqId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines[1]?.rpc).toBe(RPC);
  });

  it("logs a refusal at info with its code, and an internal failure at error with its cause, never sent", async () => {
    let fail: () => never = () => {
      throw permissionDenied("No.", "FORBIDDEN");
    };
    const { client, lines } = setup({
      async listProviderStates() {
        return fail();
      },
    });
    await expect(client.listProviderStates({})).rejects.toMatchObject({ code: Code.PermissionDenied });
    expect(lines[0]).toMatchObject({ level: 30, msg: "rpc refused", code: "PermissionDenied", rpc: RPC });

    fail = () => {
      throw new Error("database password is hunter2");
    };
    const err = await client.listProviderStates({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Internal);
    expect((err as ConnectError).rawMessage).not.toContain("hunter2");
    expect(lines[1]).toMatchObject({ level: 50, msg: "rpc failed", code: "Internal", rpc: RPC });
    expect(JSON.stringify(lines[1]?.err)).toContain("hunter2");
    expect(lines[1]?.reqId).toBe((err as ConnectError).metadata.get("x-request-id"));
  });

  describe("streams", () => {
    const STREAM = "passerelle.inference.v1.InferenceService/StreamChatCompletion";
    const chunk = (id: string) => ({ chunk: { id } }) as never;

    it("log one line when the stream ends, with the whole stream's time", async () => {
      const { client, lines } = setup({
        async *streamChatCompletion() {
          yield chunk("a");
          await new Promise((r) => setTimeout(r, 60));
          yield chunk("b");
        },
      });
      const ids: string[] = [];
      const stream = client.streamChatCompletion({});
      for await (const m of stream) {
        ids.push(m.chunk?.id ?? "");
        // Nothing is logged while the stream is still open.
        expect(lines).toHaveLength(0);
      }
      expect(ids).toEqual(["a", "b"]);
      await turnOver();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 30, msg: "rpc ok", rpc: STREAM });
      expect(lines[0]?.ms as number).toBeGreaterThanOrEqual(50);
    });

    it("normalise an error they end with: refusals keep their code, anything else is a generic Internal", async () => {
      let fail: () => never = () => {
        throw permissionDenied("No.", "FORBIDDEN");
      };
      const { client, lines } = setup({
        async *streamChatCompletion() {
          fail();
          yield chunk("never");
        },
      });
      const drain = async () => {
        for await (const _ of client.streamChatCompletion({}, { headers: { "x-request-id": "req-s" } })) {
          // nothing arrives
        }
      };
      await expect(drain()).rejects.toMatchObject({ code: Code.PermissionDenied });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 30, msg: "rpc refused", code: "PermissionDenied", reqId: "req-s" });

      fail = () => {
        throw new Error("database password is hunter2");
      };
      const err = await drain().catch((e: unknown) => e);
      expect((err as ConnectError).code).toBe(Code.Internal);
      expect((err as ConnectError).rawMessage).not.toContain("hunter2");
      expect((err as ConnectError).metadata.get("x-request-id")).toBe("req-s");
      expect(lines[1]).toMatchObject({ level: 50, msg: "rpc failed", code: "Internal", reqId: "req-s" });
      expect(lines).toHaveLength(2);
    });

    it("log a consumer that stops reading as Canceled, once", async () => {
      let finished = false;
      const { client, lines } = setup({
        async *streamChatCompletion() {
          try {
            for (let i = 0; ; i++) {
              yield chunk(String(i));
              await new Promise((r) => setTimeout(r, 1));
            }
          } finally {
            finished = true;
          }
        },
      });
      // Connect's clients drop `return()` from the iterator they hand out: stopping early is signalled by aborting.
      const ac = new AbortController();
      for await (const m of client.streamChatCompletion({}, { signal: ac.signal })) if (m.chunk?.id === "2") break;
      ac.abort();
      await new Promise((r) => setTimeout(r, 20));
      expect(finished).toBe(true);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 30, msg: "rpc refused", code: "Canceled", rpc: STREAM });
    });
  });
});
