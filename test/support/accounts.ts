import { randomBytes } from "node:crypto";
import { type Client, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { expect } from "vitest";
import { AccountService } from "../../gen/passerelle/accounts/v1/account_service_pb.js";
import type { TestPlatform } from "./platform.js";

/** Helpers for end-to-end tests of the accounts API: plain fetch against the REST bridge, Connect clients. */

export interface RestResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the assertions, not by types
export type Json = any;

/** One REST call; `key` becomes `Authorization: Bearer <key>`, `authorization` overrides the header verbatim. */
export async function rest(
  t: TestPlatform,
  method: string,
  path: string,
  opts: { key?: string; authorization?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RestResponse<Json>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${t.httpUrl}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text, the assertion shows it
  }
  return { status: res.status, body, headers: res.headers };
}

/** Asserts the status and OpenAI's error shape `{error:{message,type,param,code}}`. */
export function expectOpenAIError(res: RestResponse<Json>, status: number, type: string): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: { type } } });
  const err = res.body.error;
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(Object.keys(err).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof err.message).toBe("string");
  expect(err.message.length).toBeGreaterThan(0);
  expect(err.param === null || typeof err.param === "string").toBe(true);
  expect(err.code === null || typeof err.code === "string").toBe(true);
  expect(res.headers.get("x-request-id")).toBeTruthy();
}

export const uniq = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

export type AccountClient = Client<typeof AccountService>;

export function connectClient(t: TestPlatform): AccountClient {
  return createClient(AccountService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
}

export function grpcWebClient(t: TestPlatform): AccountClient {
  return createClient(AccountService, createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
}

export const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

/** Resolves to the Connect code of a call expected to fail (fails the test when the call succeeds). */
export async function connectCode(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (err) {
    return (err as ConnectError).code;
  }
  throw new Error("expected the RPC to fail, but it succeeded");
}

/** Creates a role (admin REST API). */
export async function createRole(t: TestPlatform, permissions: string[] = []): Promise<Json> {
  const res = await rest(t, "POST", "/v1/admin/roles", { key: t.adminKey, body: { name: uniq("role"), permissions } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

export async function createOrganization(t: TestPlatform): Promise<Json> {
  const res = await rest(t, "POST", "/v1/admin/organizations", { key: t.adminKey, body: { name: uniq("org") } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  /** A standard key, created by an admin for the user. */
  key: string;
  keyId: string;
  user: Json;
}

/** Creates a user (admin REST API) and, through `/v1/admin/keys`, a key for them. */
export async function createUser(
  t: TestPlatform,
  opts: { role: string; organization?: string | null; password?: string },
): Promise<TestUser> {
  const email = `${uniq("user")}@example.test`;
  const password = opts.password ?? "a long enough password";
  const res = await rest(t, "POST", "/v1/admin/users", {
    key: t.adminKey,
    body: { email, password, role: opts.role, organization: opts.organization ?? null },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const key = await rest(t, "POST", "/v1/admin/keys", {
    key: t.adminKey,
    body: { name: "fixture", user: res.body.id },
  });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  return { id: res.body.id, email, password, key: key.body.key, keyId: key.body.id, user: res.body };
}
