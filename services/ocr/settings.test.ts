import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";

describe("OCR settings", () => {
  it("defaults to no URL fetching, 100 pages, 4 at a time, 150 dpi", () => {
    expect(loadConfig({}).ocr).toEqual({
      maxPages: 100,
      concurrency: 4,
      dpi: 150,
      renderThreads: 2,
      imageTokensPerPage: 2048,
      urlAllowlist: [],
    });
  });

  it("reads the allow-list as URL prefixes and refuses anything else", () => {
    const env = { PASSERELLE_OCR_URL_ALLOWLIST: " https://docs.example.org/public/ , http://10.0.0.5:8080/ " };
    expect(loadConfig(env).ocr.urlAllowlist).toEqual(["https://docs.example.org/public/", "http://10.0.0.5:8080/"]);
    expect(() => loadConfig({ PASSERELLE_OCR_URL_ALLOWLIST: "docs.example.org" })).toThrow(ConfigError);
    expect(() => loadConfig({ PASSERELLE_OCR_URL_ALLOWLIST: "ftp://docs.example.org/" })).toThrow(ConfigError);
    expect(() => loadConfig({ PASSERELLE_OCR_MAX_PAGES: "0" })).toThrow(ConfigError);
  });
});
