import type { EngineName } from '@llem/domain';
import type { Logger } from '@llem/resilience';

// The engine contract. An engine loads a model (or connects to a server, or prepares a program),
// runs a list of requests while reporting per-request token timing, and disposes of everything
// it holds. The measurement harness owns the energy window; an engine only says when tokens
// happened. All times are monotonic milliseconds from `performance.now()` in the child process.
// Engine names are @llem/domain's `EngineName`: the config schema owns the list.

/** One prompt to run. */
export interface EngineRequest {
  /** Position in the workload, 0-based. */
  id: number;
  prompt: string;
  maxOutputTokens: number;
  /**
   * Trace replay: when to send this request, in ms after the workload starts. Requests either all
   * carry one or none does; when they do, the send times are the run's arrival process in place
   * of the engine's own (openai: its open-loop dispatcher sends each at its time instead of
   * `concurrency` or `request_rate`; llamacpp: the next free sequence waits for it). Ascending.
   */
  sendAtMs?: number;
  /**
   * Multi-turn: the `id` of the request (the previous turn of the conversation) that must have
   * ended before this one is sent. It comes earlier in the list.
   */
  after?: number;
}

/**
 * The engine's own tokenizer, for prompts of exact lengths. Counts are of the text alone: the
 * special tokens an engine puts in front of every prompt (BOS) are not among them.
 */
export interface EngineTokenizer {
  /** What counts the tokens, e.g. `llama.cpp tokenizer (builtin:tiny)`, `server /tokenize`. */
  readonly source: string;
  /** The token ids of `text`, without the special tokens the engine adds. */
  tokenize(text: string): Promise<number[]>;
}

/** An engine's tokenizer, or why it has none (for the result's `workload.lengthSource`). */
export type TokenizerProbe = EngineTokenizer | { unavailable: string };

/** What happened to one request. Unknown values are `null`, never a guess. */
export interface RequestRecord {
  id: number;
  /** When the request was issued (monotonic ms). */
  startedAt: number;
  /** When the first output token arrived; `null` if none did. */
  firstTokenAt: number | null;
  /**
   * Arrival time of every output token after the first (monotonic ms). A chunk carrying k tokens
   * contributes k entries with the same time (the first token's chunk k − 1).
   */
  tokenTimes: number[];
  /**
   * Arrival times of the chunks that carried tokens, after the first token's chunk (monotonic ms).
   * Inter-token latencies are the gaps of `[firstTokenAt, ...chunkTimes]`, as vLLM's benchmark
   * defines ITL, so the TTFT is never among them and a chunk of k tokens is one gap, not k.
   * Absent when every token arrives on its own (then `tokenTimes` are the chunks).
   */
  chunkTimes?: number[];
  /** When the request finished (monotonic ms). */
  endedAt: number;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Where this request's counts came from; default: the outcome's `tokenCountSource`. */
  tokenSource?: TokenCountSource;
  /**
   * Times the request was sent again after its connection failed before any response byte; its
   * latencies still count from the first send (`startedAt`). Default 0.
   */
  retries?: number;
  /** The server's own timings for this request (llama-server's `timings` block), when sent. */
  serverTimings?: ServerTimings;
  /**
   * Open loop: when the arrival schedule said to send it (monotonic ms). TTFT and E2E counted
   * from here include the client's lateness and the waits below. Absent without a schedule.
   */
  scheduledAt?: number;
  /** Open loop: how late the client itself was to send it (ms), slot and connection waits excluded. */
  clientLagMs?: number;
  /** Open loop: time waiting for a `max_concurrency` slot or a new connection (ms). */
  connectionWaitMs?: number;
  /** Set when the request failed; the run decides whether the failure rate is acceptable. */
  error?: { type: string; message: string };
}

/**
 * llama-server's per-request `timings` (its field names in camelCase); a field the server did
 * not send is `null`.
 */
export interface ServerTimings {
  /** Prompt tokens evaluated, and the time that took (ms). */
  promptN: number | null;
  promptMs: number | null;
  /** Prompt tokens found in the server's prompt cache. */
  cacheN: number | null;
  /** Tokens generated, and the generation time (ms) from the first token to the last. */
  predictedN: number | null;
  predictedMs: number | null;
}

/** Where the token counts came from, so the result can say so. */
export type TokenCountSource = 'engine' | 'server-usage' | 'counted-chunks' | 'program-report';

export interface WorkloadOutcome {
  requests: RequestRecord[];
  inputTokens: number;
  outputTokens: number;
  tokenCountSource: TokenCountSource;
  /** Engine-specific extras that belong in the result (e.g. goodput, steady-state window). */
  extra?: Record<string, unknown>;
}

/** Facts about what was loaded, for the result's environment and FLOPs estimate. */
export interface EngineInfo {
  engine: EngineName;
  engineVersion: string | null;
  /** Model parameter count from its metadata; `null` when the engine cannot know it. */
  parameterCount: number | null;
  /** Where the model came from (a path, `builtin:tiny`, or a served model name). */
  model: string;
  /** Compute backend actually used, e.g. `cpu`, `cuda`, `remote`, `unknown`. */
  backend: string;
  /** Anything else worth recording (context size, offloaded layers, server url without secrets). */
  details: Record<string, unknown>;
}

/** Callbacks through which an engine that marks its own window tells the harness. */
export interface RunHooks {
  /** Called when the measured part starts (e.g. a `command` program printed {"llem":"start"}). */
  onWindowStart?: () => void;
  /** Called when the measured part stops. */
  onWindowStop?: () => void;
}

/**
 * One point of a load sweep (`openai.load: sweep`): the load `run` drives this time instead of the
 * config's. Closed-loop `concurrency`, or an open-loop arrival `rate` (requests/s) shaped by the
 * config's `burstiness` and `arrival_seed`; the config's `max_concurrency` caps both.
 */
export type LoadPoint =
  | { kind: 'concurrency'; concurrency: number }
  | { kind: 'rate'; rate: number };

/** What a `run` may be asked besides its requests. */
export interface RunOptions {
  /** The load of this run (a sweep point); only engines that drive load (`openai`) take it. */
  load?: LoadPoint;
}

export interface EngineContext {
  logger: Logger;
  /** Aborts loading or running (timeout, SIGINT). */
  signal: AbortSignal;
  /**
   * Where a line for the user's console goes while something slow happens outside the
   * measurement (waiting for a server to come up). The same line is also logged. Optional.
   */
  progress?: (message: string) => void;
}

export interface Engine {
  readonly name: EngineName;
  /**
   * `harness`: the harness opens the energy window right before `run` and closes it after.
   * `engine`: the engine calls `hooks.onWindowStart/Stop` itself (the `command` engine, whose
   * program may load a model before it prints the start marker).
   */
  readonly windowMarking: 'harness' | 'engine';
  load(): Promise<EngineInfo>;
  /** Unmeasured warmup requests; returns the per-request records so the harness can check CV. */
  warmup(requests: EngineRequest[]): Promise<RequestRecord[]>;
  run(requests: EngineRequest[], hooks?: RunHooks, options?: RunOptions): Promise<WorkloadOutcome>;
  /**
   * The tokenizer behind the engine's token counts, after `load()`, so a workload can build
   * prompts of exact lengths; `{ unavailable: reason }` when it cannot tokenize. Optional: an
   * engine without it cannot.
   */
  tokenizer?(): Promise<TokenizerProbe>;
  /** Releases everything. Safe to call twice and after a failed load. */
  dispose(): Promise<void>;
}
