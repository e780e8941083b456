import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith("access-control-"));

/**
 * CORS headers are for browsers: a request without `Origin` (SDKs, curl, backends) gets none of them — until now it
 * got a 290-byte `access-control-expose-headers` on every answer — but `vary: Origin` still tells caches that the
 * answer depends on it. Browser calls and preflights are covered in chat.test.ts and accounts-auth.test.ts.
 */
describe("CORS", () => {
  describe("any origin (the default)", () => {
    let t: TestPlatform;
    beforeAll(async () => {
      t = await startTestPlatform();
    });
    afterAll(() => t?.close());

    it("adds no CORS header to a request without Origin, and says the answer varies with it", async () => {
      const res = await fetch(`${t.httpUrl}/v1/models`, { headers: { authorization: `Bearer ${t.adminKey}` } });
      expect(res.status).toBe(200);
      expect(corsHeaders(res)).toEqual([]);
      expect(res.headers.get("vary")).toMatch(/\borigin\b/i);
      await res.text();
    });

    it("reflects the origin of a browser call and exposes the headers it may read", async () => {
      const res = await fetch(`${t.httpUrl}/v1/models`, {
        headers: { authorization: `Bearer ${t.adminKey}`, origin: "http://page.example.test" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBe("http://page.example.test");
      expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-request-id");
      expect(res.headers.get("vary")).toMatch(/\borigin\b/i);
      await res.text();
    });
  });

  describe("a list of origins (PASSERELLE_CORS_ORIGINS)", () => {
    let t: TestPlatform;
    beforeAll(async () => {
      t = await startTestPlatform({ env: { PASSERELLE_CORS_ORIGINS: "http://allowed.example.test" } });
    });
    afterAll(() => t?.close());

    it("allows a listed origin, in preflight and in the call", async () => {
      const preflight = await fetch(`${t.httpUrl}/v1/models`, {
        method: "OPTIONS",
        headers: { origin: "http://allowed.example.test", "access-control-request-method": "GET" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe("http://allowed.example.test");
      const res = await fetch(`${t.httpUrl}/v1/models`, {
        headers: { authorization: `Bearer ${t.adminKey}`, origin: "http://allowed.example.test" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBe("http://allowed.example.test");
      await res.text();
    });

    it("gives another origin no allow-origin header, so that its browser refuses the answer", async () => {
      const preflight = await fetch(`${t.httpUrl}/v1/models`, {
        method: "OPTIONS",
        headers: { origin: "http://other.example.test", "access-control-request-method": "GET" },
      });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      await preflight.text();
      const res = await fetch(`${t.httpUrl}/v1/models`, {
        headers: { authorization: `Bearer ${t.adminKey}`, origin: "http://other.example.test" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      await res.text();
    });
  });
});
