import { create, type DescMessage, type DescMethod, type DescService, isMessage } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { internal } from "./errors.js";

/** A service and its implementation, registered once and served by every router and by the in-process transport. */
export interface ServiceBinding {
  readonly service: DescService;
  readonly specs: ReadonlyMap<string, MethodImplSpec>;
  /** Registers the service on a Connect router (HTTP/1.1 and h2c listeners). */
  register(router: { service<S extends DescService>(desc: S, impl: ServiceImpl<S>): unknown }): void;
}

export function bindService<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceBinding {
  const spec = createServiceImplSpec(service, impl);
  const specs = new Map<string, MethodImplSpec>();
  for (const m of Object.values(spec.methods) as MethodImplSpec[]) specs.set(m.method.name, m);
  return { service, specs, register: (router) => router.service(service, impl) };
}

/** Never aborts: the signal of a call made without one (handlers always get a signal). */
const NEVER = new AbortController().signal;

/**
 * A Transport that calls the services in this process directly: the same implementations and the same server
 * interceptors (request id, logging, auth) as a call over the network, but messages pass by reference — no
 * serialization, no envelopes, no HTTP emulation. This is how the REST bridge reaches the services when both run in
 * one process; it still sees only a `Transport`, so the same bridge runs unchanged over gRPC or Connect
 * (`bridge/main.ts`).
 *
 * What the network would add and this does not: size limits on messages (the caller built them itself) and a copy
 * of each message and of the request headers — callers must not mutate a message or a Headers after handing it
 * over, nor the ones they receive.
 */
export function createInProcessTransport(
  bindings: readonly ServiceBinding[],
  opts: { interceptors?: readonly Interceptor[] } = {},
): Transport {
  const services = new Map(bindings.map((b) => [b.service.typeName, b.specs]));
  const interceptors = opts.interceptors ?? [];

  function specOf(method: DescMethod): MethodImplSpec {
    const spec = services.get(method.parent.typeName)?.get(method.name);
    if (!spec)
      throw new ConnectError(`${method.parent.typeName}/${method.name} is not implemented`, Code.Unimplemented);
    return spec;
  }

  function chain<T extends UnaryRequest | StreamRequest, R>(last: (req: T) => Promise<R>): (req: T) => Promise<R> {
    let next = last as unknown as (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;
    for (let i = interceptors.length - 1; i >= 0; i--) next = (interceptors[i] as Interceptor)(next as never) as never;
    return next as unknown as (req: T) => Promise<R>;
  }

  function callSignal(signal: AbortSignal | undefined, timeoutMs: number | undefined): AbortSignal {
    if (timeoutMs === undefined || timeoutMs <= 0) return signal ?? NEVER;
    const deadline = AbortSignal.timeout(timeoutMs);
    return signal ? AbortSignal.any([signal, deadline]) : deadline;
  }

  function context(
    spec: MethodImplSpec,
    req: UnaryRequest | StreamRequest,
    timeoutMs: number | undefined,
    responseHeader: Headers,
    responseTrailer: Headers,
  ): HandlerContext {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    return {
      method: spec.method,
      service: req.service,
      protocolName: "in-process",
      requestMethod: req.requestMethod,
      url: req.url,
      signal: req.signal,
      requestHeader: req.header,
      responseHeader,
      responseTrailer,
      values: req.contextValues,
      timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
      abort() {},
    } as HandlerContext;
  }

  function common(
    method: DescMethod,
    signal: AbortSignal,
    header: ConstructorParameters<typeof Headers>[0],
    values?: ContextValues,
  ) {
    return {
      service: method.parent,
      method,
      requestMethod: "POST",
      url: `in-process:///${method.parent.typeName}/${method.name}`,
      signal,
      // A caller's Headers is handed over as is (as messages are); anything else is copied into one.
      header: header instanceof Headers ? header : new Headers(header),
      contextValues: values ?? createContextValues(),
    };
  }

  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const spec = specOf(method);
      if (spec.kind !== "unary") throw new ConnectError(`${method.name} is not unary`, Code.Unimplemented);
      const s = callSignal(signal, timeoutMs);
      const run = chain<UnaryRequest, UnaryResponse>(async (req) => {
        const responseHeader = new Headers();
        const responseTrailer = new Headers();
        const ctx = context(spec, req, timeoutMs, responseHeader, responseTrailer);
        const out = await guard(s, spec.impl(req.message as never, ctx));
        return {
          stream: false,
          service: method.parent,
          method: method as never,
          header: responseHeader,
          trailer: responseTrailer,
          message: normalize(method.output, out),
        };
      });
      const res = await run({
        stream: false,
        ...common(method, s, header, contextValues),
        method: method as never,
        message: normalize(method.input, input),
      }).catch(rethrow);
      return res as never;
    },

    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const spec = specOf(method);
      if (spec.kind === "unary") throw new ConnectError(`${method.name} is unary`, Code.Unimplemented);
      const s = callSignal(signal, timeoutMs);
      const run = chain<StreamRequest, StreamResponse>(async (req) => {
        const responseHeader = new Headers();
        const responseTrailer = new Headers();
        const ctx = context(spec, req, timeoutMs, responseHeader, responseTrailer);
        let output: AsyncIterable<unknown>;
        if (spec.kind === "server_streaming") {
          output = spec.impl((await single(req.message)) as never, ctx);
        } else if (spec.kind === "client_streaming") {
          const impl = spec.impl;
          output = (async function* () {
            yield await impl(req.message as never, ctx);
          })();
        } else {
          output = spec.impl(req.message as never, ctx);
        }
        return {
          stream: true,
          service: method.parent,
          method: method as never,
          header: responseHeader,
          trailer: responseTrailer,
          message: messages(method.output, output, s),
        };
      });
      const res = await run({
        stream: true,
        ...common(method, s, header, contextValues),
        method: method as never,
        message: messages(method.input, input, s),
      }).catch(rethrow);
      return res as never;
    },
  };
}

function normalize(desc: DescMessage, value: unknown) {
  return isMessage(value, desc) ? value : create(desc, value as never);
}

/** Errors leave the transport as ConnectErrors, as they would from a remote call. */
function rethrow(err: unknown): never {
  throw ConnectError.from(err, Code.Internal);
}

/** Cancellation ends the call at once, as it would on the wire, whatever the implementation does with its signal. */
function guard<T>(signal: AbortSignal, work: Promise<T> | T): Promise<T> {
  if (!(work instanceof Promise)) return Promise.resolve(work);
  if (signal === NEVER) return work;
  if (signal.aborted) {
    // The implementation has started: its own outcome is nobody's to wait for, but a rejection left unobserved would
    // end the process (Node's default for an unhandled rejection).
    work.catch(() => {});
    return Promise.reject(cancelled(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function cancelled(signal: AbortSignal): ConnectError {
  const reason = signal.reason;
  if (reason instanceof ConnectError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new ConnectError("the operation timed out", Code.DeadlineExceeded);
  }
  return new ConnectError("the operation was aborted", Code.Canceled);
}

async function single<T>(input: AsyncIterable<T>): Promise<T> {
  const it = input[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new ConnectError("protocol error: missing input message", Code.InvalidArgument);
  const second = await it.next();
  if (!second.done) throw new ConnectError("protocol error: more than one input message", Code.InvalidArgument);
  return first.value;
}

/**
 * The messages of a stream, normalized, with errors as ConnectErrors. A plain iterator rather than a generator: one
 * promise per message on the hot path. Ending early (`return`) ends the source, so the implementation's `finally`
 * runs. An abort ends a pending read with Canceled and ends the source (one listener per stream, not per message).
 */
function messages(desc: DescMessage, source: AsyncIterable<unknown>, signal: AbortSignal): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      let fail: ((err: unknown) => void) | undefined;
      let finished = false;
      const onAbort = () => {
        fail?.(cancelled(signal));
        void Promise.resolve(it.return?.()).catch(() => {});
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        signal.removeEventListener("abort", onAbort);
      };
      if (signal !== NEVER) signal.addEventListener("abort", onAbort, { once: true });
      return {
        next() {
          if (signal.aborted) {
            finish();
            return Promise.reject(cancelled(signal));
          }
          return new Promise<IteratorResult<never>>((resolve, reject) => {
            fail = reject;
            it.next().then(
              (r) => {
                fail = undefined;
                if (r.done) {
                  finish();
                  resolve(r as IteratorResult<never>);
                } else resolve({ done: false, value: normalize(desc, r.value) as never });
              },
              (err: unknown) => {
                fail = undefined;
                finish();
                // As a network server would send it: a ConnectError as is, anything else a generic Internal error.
                reject(internal(err));
              },
            );
          });
        },
        async return(value?: unknown) {
          finish();
          await it.return?.(value);
          return { done: true, value: undefined as never };
        },
      };
    },
  };
}
