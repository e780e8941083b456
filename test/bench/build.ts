import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import ts from "typescript";

/**
 * Compiles the servers the bench starts to JavaScript, as `npm run build` does for production (`npm start` runs
 * `node dist/…`), so that their memory and CPU are not the tsx loader's. Each file is
 * transpiled on its own (no type check: `npx tsc --noEmit` does that), into a mirror of the repository under
 * `outDir`, which must lie inside the repository so that `node_modules` resolves. Takes a second or two.
 */

const SOURCES = ["services", "bridge", "gen", "test/support", "test/upstream", "test/bench"];

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2023,
  module: ts.ModuleKind.ES2022,
  verbatimModuleSyntax: true,
  sourceMap: true,
  esModuleInterop: true,
};

async function sources(root: string, dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (path.join(root, rel) === skip) continue;
    if (e.isDirectory()) out.push(...(await sources(root, rel, skip)));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/**
 * The Node flags `npm start` gives the platform (package.json's `start` script: what lies between `node` and the
 * script), so that the bench's Passerelle processes run with the same heap settings as production.
 */
export async function startNodeFlags(root: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { scripts: { start: string } };
  const m = /^node\s+(.*?)\s*dist\/services\/main\.js$/.exec(pkg.scripts.start.trim());
  if (!m)
    throw new Error(`package.json's start script is not 'node [flags] dist/services/main.js': ${pkg.scripts.start}`);
  return (m[1] as string).split(/\s+/).filter(Boolean);
}

/** Returns the number of files compiled. */
export async function compileForBench(root: string, outDir: string): Promise<number> {
  await rm(outDir, { recursive: true, force: true });
  let count = 0;
  for (const dir of SOURCES) {
    for (const rel of await sources(root, dir, outDir)) {
      const text = await readFile(path.join(root, rel), "utf8");
      const js = rel.replace(/\.ts$/, ".js");
      const out = ts.transpileModule(text, { compilerOptions: OPTIONS, fileName: path.join(root, rel) });
      const target = path.join(outDir, js);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, out.outputText);
      if (out.sourceMapText) await writeFile(`${target}.map`, out.sourceMapText);
      count++;
    }
  }
  return count;
}
