/** Counters and gauges behind `/metrics`. */
export interface Metrics {
  /** Completion requests received. */
  requests: number;
  /** Streams that ended normally. */
  succeeded: number;
  running: number;
  waiting: number;
  promptTokens: number;
  generationTokens: number;
  /** Prompt tokens looked up in the prompt cache, and those found there. */
  cacheQueryTokens: number;
  cacheHitTokens: number;
  /** TCP connections accepted. */
  connections: number;
  /** Connections closed by the server after a response (`closeAfterResponses`). */
  closedConnections: number;
  /** Requests that arrived on a connection being closed and got no answer. */
  droppedRequests: number;
}

export function newMetrics(): Metrics {
  return {
    requests: 0,
    succeeded: 0,
    running: 0,
    waiting: 0,
    promptTokens: 0,
    generationTokens: 0,
    cacheQueryTokens: 0,
    cacheHitTokens: 0,
    connections: 0,
    closedConnections: 0,
    droppedRequests: 0,
  };
}

/** One metric family: its name, type, help text, and its value read from the counters. */
interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  labels?: Record<string, string>;
  read: (m: Metrics) => number;
}

// vLLM's names where vLLM has the figure, so whatever reads a vLLM server reads this one;
// the server's own figures under `llem_test_server_`.
const FAMILIES: readonly Family[] = [
  {
    name: 'vllm:num_requests_running',
    type: 'gauge',
    help: 'Number of requests currently running.',
    read: (m) => m.running,
  },
  {
    name: 'vllm:num_requests_waiting',
    type: 'gauge',
    help: 'Number of requests waiting for a stream slot.',
    read: (m) => m.waiting,
  },
  {
    name: 'vllm:prompt_tokens_total',
    type: 'counter',
    help: 'Number of prefill tokens processed.',
    read: (m) => m.promptTokens,
  },
  {
    name: 'vllm:generation_tokens_total',
    type: 'counter',
    help: 'Number of generation tokens processed.',
    read: (m) => m.generationTokens,
  },
  {
    name: 'vllm:request_success_total',
    type: 'counter',
    help: 'Count of successfully processed requests.',
    labels: { finished_reason: 'length' },
    read: (m) => m.succeeded,
  },
  {
    name: 'vllm:prefix_cache_queries_total',
    type: 'counter',
    help: 'Prompt tokens looked up in the prefix cache.',
    read: (m) => m.cacheQueryTokens,
  },
  {
    name: 'vllm:prefix_cache_hits_total',
    type: 'counter',
    help: 'Prompt tokens found in the prefix cache.',
    read: (m) => m.cacheHitTokens,
  },
  {
    name: 'llem_test_server_requests_total',
    type: 'counter',
    help: 'Completion requests received.',
    read: (m) => m.requests,
  },
  {
    name: 'llem_test_server_connections_total',
    type: 'counter',
    help: 'TCP connections accepted.',
    read: (m) => m.connections,
  },
  {
    name: 'llem_test_server_connections_closed_total',
    type: 'counter',
    help: 'Kept-alive connections the server closed after a response.',
    read: (m) => m.closedConnections,
  },
  {
    name: 'llem_test_server_requests_dropped_total',
    type: 'counter',
    help: 'Requests that arrived on a connection being closed and got no answer.',
    read: (m) => m.droppedRequests,
  },
];

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/**
 * The Prometheus text exposition (format 0.0.4) of the counters; every series carries the
 * `model_name` label, as vLLM's do.
 *
 * @example
 * renderMetrics(newMetrics(), 'test-model'); // '# HELP vllm:num_requests_running …'
 */
export function renderMetrics(metrics: Metrics, model: string): string {
  const lines: string[] = [];
  for (const f of FAMILIES) {
    const labels = { ...f.labels, model_name: model };
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    lines.push(`${f.name}{${text}} ${f.read(metrics)}`);
  }
  return `${lines.join('\n')}\n`;
}
