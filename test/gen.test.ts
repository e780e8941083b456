import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");

function listFiles(dir: string, base = dir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p, base) : [path.relative(base, p)];
  });
}

describe("generated code", () => {
  it("gen/ is exactly what `buf generate` produces from proto/", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "passerelle-gen-"));
    try {
      execFileSync(path.join(root, "node_modules/.bin/buf"), ["generate", "--output", out], {
        cwd: root,
        stdio: "pipe",
      });
      const fresh = path.join(out, "gen");
      const committed = path.join(root, "gen");
      const freshFiles = listFiles(fresh).sort();
      expect(listFiles(committed).sort(), "gen/ has extra or missing files: run `npm run generate`").toEqual(
        freshFiles,
      );
      for (const f of freshFiles) {
        const same = fs.readFileSync(path.join(fresh, f), "utf8") === fs.readFileSync(path.join(committed, f), "utf8");
        expect(same, `gen/${f} is stale: run \`npm run generate\` and commit gen/`).toBe(true);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
