import cliProgress from 'cli-progress';
import type { ProgressEvent, ProgressSink } from './commands/run';
import type { CliContext } from './context';

/**
 * The progress display of `llem run`. On a TTY: one bar (cli-progress) with runs done/total, the
 * current config, elapsed time, an ETA and the countdown during gaps, redrawn in place on stderr.
 * On a pipe or a file: plain lines, one per event that matters, so logs stay readable. Results
 * never go here: they go to stdout.
 */

export interface ProgressDisplayOptions {
  /** Draw the bar (true) or plain lines (false). Default: whether stderr is a TTY. */
  tty?: boolean;
  /** Monotonic milliseconds (tests pin it). Default `performance.now()`. */
  now?: () => number;
  /** Terminal width for the bar; default the stream's `columns` or 100. */
  columns?: number;
}

/** A progress sink that must be stopped (it may hold a timer and the cursor). */
export interface ProgressDisplay extends ProgressSink {
  stop(): void;
}

/**
 * `75_000` → `1m15s`; `null` → `?`.
 *
 * @example
 * formatClock(3_725_000); // '1h02m05s'
 */
export function formatClock(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s`;
  if (m) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

interface State {
  startedAt: number;
  total: number;
  /** Runs finished before this session (resume) plus those finished now. */
  done: number;
  previouslyDone: number;
  /** Runs started so far (earlier sessions' included): the position a starting run is given. */
  started: number;
  failed: number;
  label: string;
  /** ETA as last reported and when (so it can count down between runs). */
  etaMs: number | null;
  etaAt: number;
  gap: string;
}

// Both displays keep the same counts; these two transitions are the one place they are kept.

/** A study (re)starts: runs finished in an earlier session count as done from the start. */
function studyStarted(
  state: State,
  event: Extract<ProgressEvent, { type: 'study-started' }>,
  now: number,
): void {
  state.startedAt = now;
  state.total = event.total;
  state.previouslyDone = event.total - event.toRun;
  state.done = state.previouslyDone;
  state.started = state.previouslyDone;
}

/**
 * A run ended. Runs on several GPUs end out of dispatch order, so count endings (an interrupted
 * run is not done) on top of the earlier sessions' runs.
 */
function runFinished(state: State, event: Extract<ProgressEvent, { type: 'run-finished' }>): void {
  if (event.status !== 'interrupted') state.done = Math.min(state.total, state.done + 1);
  if (event.status === 'failed') state.failed += 1;
}

/** ` on GPU 0` / ` on GPUs 2,3` for a run given devices; empty otherwise. */
function onGpus(devices: readonly { index: number }[] | undefined): string {
  if (!devices || devices.length === 0) return '';
  return ` on GPU${devices.length === 1 ? '' : 's'} ${devices.map((d) => d.index).join(',')}`;
}

function etaNow(state: State, now: number): number | null {
  return state.etaMs === null ? null : Math.max(0, state.etaMs - (now - state.etaAt));
}

/**
 * Build the display for a CLI context: a bar on a TTY, plain lines otherwise. `llem run` passes
 * it as its progress sink; `--quiet` and `--json` use no display at all.
 *
 * @example
 * const progress = createProgressDisplay(ctx);
 * runner.on('run-started', (e) => progress({ type: 'run-started', ...e }));
 */
export function createProgressDisplay(
  ctx: Pick<CliContext, 'stderr'>,
  options: ProgressDisplayOptions = {},
): ProgressDisplay {
  const tty = options.tty ?? Boolean(ctx.stderr.isTTY);
  const now = options.now ?? (() => performance.now());
  const state: State = {
    startedAt: now(),
    total: 0,
    done: 0,
    previouslyDone: 0,
    started: 0,
    failed: 0,
    label: '',
    etaMs: null,
    etaAt: 0,
    gap: '',
  };
  return tty ? barDisplay(ctx, state, now, options) : lineDisplay(ctx, state, now);
}

function lineDisplay(
  ctx: Pick<CliContext, 'stderr'>,
  state: State,
  now: () => number,
): ProgressDisplay {
  const write = (line: string) => ctx.stderr.write(`${line}\n`);
  const clock = () => `[${formatClock(now() - state.startedAt)}]`;
  const sink = ((event: ProgressEvent) => {
    switch (event.type) {
      case 'study-started':
        studyStarted(state, event, now());
        write(
          `${clock()} ${event.resumed ? 'Resuming' : 'Running'} ${event.studyName}: ${event.toRun} of ${event.total} runs to do → ${event.studyDir}`,
        );
        break;
      case 'gap-countdown':
        // One line per gap, not one per second: a log file wants the fact, not the countdown.
        if (event.secondsLeft === event.totalSeconds) {
          write(`${clock()} waiting ${event.totalSeconds} s (${event.kind} gap)`);
        }
        break;
      case 'run-started':
        state.started = Math.min(state.total, state.started + 1);
        write(
          `${clock()} [${state.started}/${state.total}] ${event.label || event.configHash} (cycle ${event.cycle + 1})${onGpus(event.devices)}…`,
        );
        break;
      case 'run-progress':
        // The worker's own line (e.g. waiting for a server), indented under its run.
        write(`${clock()}     ${event.message}`);
        break;
      case 'run-finished': {
        runFinished(state, event);
        const eta =
          event.eta.remainingMs === null ? '' : `, ETA ${formatClock(event.eta.remainingMs)}`;
        // Runs in parallel end out of order: name the run that ended.
        const which = event.devices ? ` ${event.label}${onGpus(event.devices)}` : '';
        // A stopped run is not a failure: it runs again on resume, and is not counted as done.
        const outcome =
          event.status === 'interrupted'
            ? `stopped after ${formatClock(event.durationMs)}; it runs again on resume`
            : `${event.status} in ${formatClock(event.durationMs)}${
                event.error
                  ? ` (${event.error.type}${event.error.code ? ` ${event.error.code}` : ''}: ${event.error.message.split('\n')[0]})`
                  : ''
              }${eta}`;
        write(`${clock()} [${state.done}/${state.total} done]${which} ${outcome}`);
        break;
      }
      case 'study-finished':
        write(
          `${clock()} Study ${event.status}: ${event.counts.completed} completed, ${event.counts.failed} failed of ${event.counts.total}`,
        );
        break;
      default:
        break;
    }
  }) as ProgressDisplay;
  sink.stop = () => undefined;
  return sink;
}

function barDisplay(
  ctx: Pick<CliContext, 'stderr'>,
  state: State,
  now: () => number,
  options: ProgressDisplayOptions,
): ProgressDisplay {
  const stream = ctx.stderr as NodeJS.WriteStream;
  const columns = options.columns ?? (stream.columns || 100);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        '{bar} {value}/{total} runs{failedText} | {label} | {elapsedText} elapsed | ETA {etaText}{gap}',
      barsize: Math.max(10, Math.min(30, columns - 80)),
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      linewrap: false,
      clearOnComplete: false,
      stopOnComplete: false,
      // The bar ticks itself so elapsed time and the gap countdown move between events.
      fps: 2,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const payload = () => {
    const t = now();
    return {
      label: state.label || 'starting…',
      elapsedText: formatClock(t - state.startedAt),
      etaText: formatClock(etaNow(state, t)),
      failedText: state.failed ? ` (${state.failed} failed)` : '',
      gap: state.gap,
    };
  };
  const redraw = () => {
    if (!started) return;
    bar.update(state.done, payload());
    // Events are rare (a few per run); draw each at once rather than wait for the next tick.
    bar.render();
  };
  const sink = ((event: ProgressEvent) => {
    switch (event.type) {
      case 'study-started':
        studyStarted(state, event, now());
        bar.start(state.total, state.done, payload());
        started = true;
        break;
      case 'gap-countdown':
        state.gap = ` | ${event.kind} gap ${event.secondsLeft}s (Enter skips)`;
        redraw();
        break;
      case 'gap-finished':
        state.gap = '';
        redraw();
        break;
      case 'run-started':
        state.label = `${event.label || event.configHash} · cycle ${event.cycle + 1}`;
        state.gap = '';
        redraw();
        break;
      case 'run-progress':
        // One line of status beside the bar until the run ends (a bar has no room for a log).
        state.gap = ` | ${event.message.length > 70 ? `${event.message.slice(0, 69)}…` : event.message}`;
        redraw();
        break;
      case 'run-finished':
        runFinished(state, event);
        state.gap = '';
        state.etaMs = event.eta.remainingMs;
        state.etaAt = now();
        redraw();
        break;
      case 'study-finished':
        state.label = `study ${event.status}`;
        state.etaMs = 0;
        redraw();
        sink.stop();
        break;
      default:
        break;
    }
  }) as ProgressDisplay;
  sink.stop = () => {
    if (!started) return;
    started = false;
    bar.stop();
  };
  return sink;
}

/** The input side of a terminal: what `listenForEnter` reads. */
export interface KeyInput {
  isTTY?: boolean;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/**
 * Call `onEnter` each time the user presses Enter, when `input` is a terminal (the gap countdown
 * says "Enter skips"). Returns the function that stops listening and lets the process exit.
 * A no-op on a pipe, so scripted runs never block on stdin.
 *
 * @example
 * const stop = listenForEnter(process.stdin, () => runner.skipGap());
 */
export function listenForEnter(input: KeyInput, onEnter: () => void): () => void {
  if (!input.isTTY) return () => undefined;
  const onData = (chunk: Buffer | string) => {
    if (String(chunk).includes('\n') || String(chunk).includes('\r')) onEnter();
  };
  input.on('data', onData);
  input.resume();
  return () => {
    input.off('data', onData);
    input.pause();
  };
}
