/** Per-model figures behind `/metrics`, in vLLM's metric names and Prometheus text format (prometheus_client style). */

export interface ModelMetrics {
  running: number;
  waiting: number;
  promptTokens: number;
  generationTokens: number;
  /** Finished requests by finish reason. */
  success: Record<string, number>;
}

export function emptyModelMetrics(): ModelMetrics {
  return { running: 0, waiting: 0, promptTokens: 0, generationTokens: 0, success: {} };
}

const float = (n: number) => (Number.isInteger(n) ? `${n}.0` : String(n));
const label = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** `maxNumSeqs` scales the KV-cache usage gauge (running / max-num-seqs: a stand-in, not a memory figure). */
export function renderMetrics(models: ReadonlyMap<string, ModelMetrics>, maxNumSeqs: number): string {
  const lines: string[] = [];
  const family = (
    name: string,
    type: "gauge" | "counter",
    help: string,
    sample: string,
    value: (m: ModelMetrics) => number,
  ) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [id, m] of models) lines.push(`${sample}{engine="0",model_name="${label(id)}"} ${float(value(m))}`);
  };
  family(
    "vllm:num_requests_running",
    "gauge",
    "Number of requests in model execution batches.",
    "vllm:num_requests_running",
    (m) => m.running,
  );
  family(
    "vllm:num_requests_waiting",
    "gauge",
    "Number of requests waiting to be processed.",
    "vllm:num_requests_waiting",
    (m) => m.waiting,
  );
  family(
    "vllm:kv_cache_usage_perc",
    "gauge",
    "KV-cache usage. 1 means 100 percent usage.",
    "vllm:kv_cache_usage_perc",
    (m) => Math.min(1, m.running / Math.max(1, maxNumSeqs)),
  );
  family(
    "vllm:prompt_tokens",
    "counter",
    "Number of prefill tokens processed.",
    "vllm:prompt_tokens_total",
    (m) => m.promptTokens,
  );
  family(
    "vllm:generation_tokens",
    "counter",
    "Number of generation tokens processed.",
    "vllm:generation_tokens_total",
    (m) => m.generationTokens,
  );
  lines.push(
    "# HELP vllm:request_success Count of successfully processed requests.",
    "# TYPE vllm:request_success counter",
  );
  for (const [id, m] of models) {
    for (const [reason, n] of Object.entries(m.success)) {
      lines.push(
        `vllm:request_success_total{engine="0",finished_reason="${label(reason)}",model_name="${label(id)}"} ${float(n)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
