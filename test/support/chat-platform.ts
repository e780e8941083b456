import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Simulator, type SimulatorOptions, startSimulator } from "../upstream/simulator.js";
import { startTestPlatform, type TestPlatform } from "./platform.js";

export interface ChatPlatform {
  t: TestPlatform;
  sims: Simulator[];
  close(): Promise<void>;
}

/**
 * The platform with one chat model (`qwen2.5-7b`, alias `chat-default`) served by `instances` vLLM simulators,
 * registered through a PASSERELLE_MODELS_FILE as an operator would.
 */
export async function startChatPlatform(
  opts: { instances?: number; sim?: Partial<SimulatorOptions>; env?: Record<string, string> } = {},
): Promise<ChatPlatform> {
  const sims = await Promise.all(Array.from({ length: opts.instances ?? 3 }, () => startSimulator(opts.sim ?? {})));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "passerelle-chat-"));
  const file = path.join(dir, "models.yaml");
  const providers = sims
    .map((s) => `      - { type: vllm, url: "${s.url}", model_name: sim-chat, timeout_s: 30, max_concurrency: 256 }`)
    .join("\n");
  await fs.writeFile(
    file,
    `models:\n  - name: qwen2.5-7b\n    aliases: [chat-default]\n    type: text-generation\n    providers:\n${providers}\n`,
  );
  const t = await startTestPlatform({ env: { PASSERELLE_MODELS_FILE: file, ...opts.env } });
  return {
    t,
    sims,
    async close() {
      await t.close();
      await Promise.all(sims.map((s) => s.close()));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
