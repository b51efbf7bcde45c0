import { relative } from 'node:path';
import type { ManifestEntry } from '@llem/domain';
import { describeStudyStatus, FIGURE_WARNINGS, type LoadedStudy } from '@llem/report';
import type { StudySummary } from '@llem/study';
import type { CliContext } from '../../context';

// What `llem run` prints when a study ends: the per-run table, failed and stopped runs, the
// measurement warnings and what this machine could not measure (or the same as JSON).

/** A figure the study could not measure on this machine, and why. */
export interface NotMeasurable {
  figure: string;
  reason: string;
}

export interface RunSummaryJson {
  studyDir: string;
  status: StudySummary['status'];
  /** The status in words: `running (Slurm job 812)` when other runners still hold runs. */
  statusText: string;
  counts: StudySummary['counts'];
  durationMs: number;
  notMeasurable: NotMeasurable[];
  runs: Array<{
    key: string;
    label: string;
    cycle: number;
    status: ManifestEntry['status'];
    error: ManifestEntry['error'];
    outputTokensPerS: number | null;
    energyJ: number | null;
    energyPerOutputTokenJ: number | null;
    energyMethod: string | null;
    warnings: string[];
  }>;
}

/**
 * Say plainly what the study measured and what it could not, from the study as the validating
 * loader reads it (records, results checked against their schema).
 */
export function summariseStudy(summary: StudySummary, study: LoadedStudy): RunSummaryJson {
  const results = new Map(
    study.runs.flatMap((r) => (r.result ? [[r.key, r.result] as const] : [])),
  );
  const notMeasurable: NotMeasurable[] = [];
  const seen = new Set<string>();
  const add = (figure: string, reason: string) => {
    if (seen.has(`${figure}\0${reason}`)) return;
    seen.add(`${figure}\0${reason}`);
    notMeasurable.push({ figure, reason });
  };
  for (const r of results.values()) {
    if (r.energy.totalJ === null)
      add('energy (J, J/token)', r.energy.unavailableReason ?? 'no energy source on this machine');
    if (r.memory.gpuPeakUsedMiB === null)
      add(
        'peak GPU memory',
        r.environment.gpus.length === 0
          ? 'no GPU visible through NVML'
          : 'NVML could not read memory',
      );
    if (r.memory.rssPeakMiB === null)
      add(
        'peak RSS',
        r.engine === 'command'
          ? 'a command program runs in its own process, whose memory llem does not see'
          : 'not readable on this OS',
      );
    if (r.latency.ttftMs === null) add('TTFT / ITL', 'the engine reported no per-token timing');
    if (r.flops.method === 'none') add('FLOPs estimate', 'the model parameter count is unknown');
  }
  return {
    studyDir: summary.studyDir,
    status: summary.status,
    statusText: summary.status === 'running' ? describeStudyStatus(study) : summary.status,
    counts: summary.counts,
    durationMs: summary.durationMs,
    notMeasurable,
    runs: study.runs.map((e) => {
      const r = results.get(e.key);
      return {
        key: e.key,
        label: e.label,
        cycle: e.cycle,
        status: e.status,
        error: e.error,
        outputTokensPerS: r?.throughput.outputTokensPerS ?? null,
        energyJ: r?.energy.totalJ ?? null,
        energyPerOutputTokenJ: r?.energyPerOutputTokenJ ?? null,
        energyMethod: r?.energy.method ?? null,
        warnings: r?.warnings.map((w) => w.code) ?? [],
      };
    }),
  };
}

/** Lines of a failed run's stderr tail shown in the summary (the manifest keeps them all). */
const FAILED_TAIL_LINES = 5;

const fmt = (v: number | null, digits: number) => (v === null ? '—' : v.toFixed(digits));

export function printSummary(ctx: CliContext, s: RunSummaryJson, cwd: string): void {
  const out = (line = '') => ctx.stdout.write(`${line}\n`);
  const c = s.counts;
  out(
    `Study ${s.statusText}: ${c.completed} completed, ${c.failed} failed, ${c.running > 0 ? `${c.running} running, ` : ''}${c.pending} not run, of ${c.total} (${(s.durationMs / 1000).toFixed(0)} s)`,
  );
  out(`Results: ${relative(cwd, s.studyDir) || '.'}`);
  out();
  const rows = s.runs.map((r) => [
    r.label || r.key,
    String(r.cycle + 1),
    r.status,
    fmt(r.outputTokensPerS, 1),
    fmt(r.energyJ, 2),
    fmt(r.energyPerOutputTokenJ, 4),
  ]);
  const head = ['config', 'cycle', 'status', 'tok/s', 'energy J', 'J/token'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  out(line(head));
  for (const r of rows) out(line(r));
  const failed = s.runs.filter((r) => r.status === 'failed' && r.error);
  if (failed.length > 0) {
    out();
    out('Failed runs:');
    for (const r of failed) {
      // The first line says what failed; a command's stderr tail follows it (last lines only).
      const [first, ...rest] = (r.error?.message ?? '').split('\n');
      const what = `${r.error?.type}${r.error?.code ? ` (${r.error.code})` : ''}`;
      out(`  ${r.label || r.key} (cycle ${r.cycle + 1}): ${what}: ${first}`);
      const tail = rest.filter((l) => l.trim() !== '').slice(-FAILED_TAIL_LINES);
      for (const line of tail) out(`      ${line}`);
    }
  }
  // Stopped by Ctrl-C (or a runner that died): not failures, they run again on resume.
  const stopped = s.runs.filter((r) => r.status !== 'failed' && r.error?.type === 'interrupted');
  if (stopped.length > 0) {
    out();
    out(`Stopped before the end (${stopped.length}), will run again on resume:`);
    for (const r of stopped) out(`  ${r.label || r.key} (cycle ${r.cycle + 1})`);
  }
  const warned = new Map<string, number>();
  for (const r of s.runs)
    for (const code of r.warnings) warned.set(code, (warned.get(code) ?? 0) + 1);
  // energy-unavailable is the block below; the rest are about the quality of a measurement.
  warned.delete('energy-unavailable');
  if (warned.size > 0) {
    out();
    out(
      `Measurement warnings (details in each result and report.html): ${[...warned].map(([code, n]) => `${code} (${n} ${n === 1 ? 'run' : 'runs'})`).join(', ')}`,
    );
    // Warnings that make some figures unreliable say which and why (marked in results show).
    for (const code of warned.keys()) {
      const meaning = FIGURE_WARNINGS[code as keyof typeof FIGURE_WARNINGS];
      if (meaning) out(`  ${code}: ${meaning}; llem results show marks the figures it affects.`);
    }
  }
  if (s.notMeasurable.length > 0) {
    out();
    out('Not measurable on this machine:');
    for (const n of s.notMeasurable) out(`  ${n.figure}: ${n.reason}`);
  }
}
