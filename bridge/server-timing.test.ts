import { describe, expect, it } from "vitest";
import { serverTiming } from "./rpc.js";

describe("serverTiming (REST answers of model calls)", () => {
  it("adds the gateway's own time beside the upstream's", () => {
    expect(serverTiming("upstream;dur=12.50", 13.1)).toBe("upstream;dur=12.50, gateway;dur=0.60");
    expect(serverTiming("upstream;dur=0", 0.25)).toBe("upstream;dur=0.00, gateway;dur=0.25");
  });

  it("never reports a negative gateway time (clocks read at different places)", () => {
    expect(serverTiming("upstream;dur=5.00", 4.99)).toBe("upstream;dur=5.00, gateway;dur=0.00");
  });

  it("adds nothing for a call that reached no model, or a header it did not write", () => {
    expect(serverTiming(null, 3)).toBeUndefined();
    expect(serverTiming("db;dur=3", 3)).toBeUndefined();
    expect(serverTiming("upstream;dur=abc", 3)).toBeUndefined();
  });
});
