import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

describe("platform smoke", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("serves /v1/me for the bootstrap admin", async () => {
    const res = await fetch(`${t.httpUrl}/v1/me`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ object: "me", email: t.adminEmail, permissions: expect.arrayContaining(["admin"]) });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });
});
