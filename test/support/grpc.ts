import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * A real gRPC client (`@grpc/grpc-js` over h2c) for AccountService, loaded from the .proto files at run time —
 * independent of the generated TypeScript, so it checks the wire contract the way any backend client sees it.
 */

export { grpc };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PROTO_DIR = path.join(root, "proto");
const ACCOUNT_SERVICE = "passerelle/accounts/v1/account_service.proto";

let cached: grpc.ServiceClientConstructor | undefined;

/** The AccountService client constructor; google/protobuf/*.proto come from protobufjs's bundled copies. */
function accountServiceCtor(): grpc.ServiceClientConstructor {
  if (cached) return cached;
  const definition = protoLoader.loadSync(ACCOUNT_SERVICE, {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    passerelle: { accounts: { v1: { AccountService: grpc.ServiceClientConstructor } } };
  };
  cached = pkg.passerelle.accounts.v1.AccountService;
  return cached;
}

/** A decoded message: proto field names in lowerCamelCase, enums as their names, int64 as strings. */
export type GrpcMessage = Record<string, unknown>;

export interface AccountGrpcClient {
  /**
   * Calls a unary method (`GetMe`, `ListUsers`, … or its lowerCamel form) with `authorization: Bearer <key>` when a
   * key is given; rejects with the grpc-js ServiceError (check `err.code` against `grpc.status`).
   */
  call(method: string, request: GrpcMessage, key?: string, extra?: Record<string, string>): Promise<GrpcMessage>;
  close(): void;
}

/** `target` is `host:port` or `http://host:port` of the h2c listener. */
export function createAccountGrpcClient(target: string): AccountGrpcClient {
  const Ctor = accountServiceCtor();
  const address = target.replace(/^https?:\/\//, "");
  const client = new Ctor(address, grpc.credentials.createInsecure());
  return {
    call(method, request, key, extra = {}) {
      const name = method.charAt(0).toLowerCase() + method.slice(1);
      const fn = (client as unknown as Record<string, unknown>)[name];
      if (typeof fn !== "function") return Promise.reject(new Error(`AccountService has no method ${method}`));
      const metadata = new grpc.Metadata();
      if (key !== undefined) metadata.set("authorization", `Bearer ${key}`);
      for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
      return new Promise((resolve, reject) => {
        (fn as grpc.requestCallback<GrpcMessage> & ((...args: unknown[]) => unknown)).call(
          client,
          request,
          metadata,
          { deadline: Date.now() + 10_000 },
          (err: grpc.ServiceError | null, res?: GrpcMessage) => (err ? reject(err) : resolve(res ?? {})),
        );
      });
    },
    close() {
      client.close();
    },
  };
}

/** Runs `fn` with a fresh client and closes it afterwards. */
export async function withAccountGrpcClient<T>(target: string, fn: (c: AccountGrpcClient) => Promise<T>): Promise<T> {
  const c = createAccountGrpcClient(target);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** A one-off unary call on a fresh client. */
export function grpcCall(
  target: string,
  method: string,
  request: GrpcMessage,
  key?: string,
  extra?: Record<string, string>,
): Promise<GrpcMessage> {
  return withAccountGrpcClient(target, (c) => c.call(method, request, key, extra));
}

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number";
}

/** Resolves to the gRPC status code of a call expected to fail (fails the test when the call succeeds). */
export async function grpcCode(call: Promise<unknown>): Promise<grpc.status> {
  try {
    await call;
  } catch (err) {
    if (isServiceError(err)) return err.code;
    throw err;
  }
  throw new Error("expected the gRPC call to fail, but it succeeded");
}
