import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFiles, type ServerMetricsScrape } from '@llem/domain';
import { describe, expect, it } from 'vitest';
import {
  loadStudy,
  planToJson,
  readRunServerMetrics,
  renderPlan,
  serverMetricPoints,
  writeStudyReport,
} from '../src/index';
import { buildStudyDir } from './fixture-study';

/** vLLM-like scrapes: two models' running gauges, a KV fraction, a token counter. */
function scrapes(): ServerMetricsScrape[] {
  return [0, 1000, 2000, 3000].map(
    (tMs, i): ServerMetricsScrape => ({
      tMs: tMs - 2,
      types: {
        'vllm:num_requests_running': 'gauge',
        'vllm:gpu_cache_usage_perc': 'gauge',
        'vllm:generation_tokens_total': 'counter',
      },
      samples: [
        { name: 'vllm:num_requests_running', labels: { model_name: 'a' }, value: i },
        { name: 'vllm:num_requests_running', labels: { model_name: 'b' }, value: 1 },
        { name: 'vllm:gpu_cache_usage_perc', labels: { model_name: 'a' }, value: 0.25 * i },
        { name: 'vllm:generation_tokens_total', labels: { model_name: 'a' }, value: 100 * i * i },
        { name: 'some:unknown_metric', labels: {} as Record<string, string>, value: 7 },
      ],
    }),
  );
}

describe('a managed server in the report', () => {
  it('main figures: summed over label sets, a fraction as %, a counter as its rate', () => {
    const points = serverMetricPoints(scrapes());
    expect(points.filter((p) => p.series === 'running').map((p) => p.value)).toEqual([1, 2, 3, 4]);
    expect(points.filter((p) => p.chart === 'kv-cache').map((p) => p.value)).toEqual([
      0, 25, 50, 75,
    ]);
    // 0, 100, 400, 900 tokens at 1 s apart: 100, 300, 500 tokens/s.
    expect(points.filter((p) => p.chart === 'tokens').map((p) => Math.round(p.value))).toEqual([
      100, 300, 500,
    ]);
    expect(points.filter((p) => p.chart === 'tokens').map((p) => p.tS)).toEqual([
      0.998, 1.998, 2.998,
    ]);
  });

  it('draws them beside the power trace of the run that has a metrics file', async () => {
    const dir = buildStudyDir({
      configs: [{ label: 'vllm seqs=64', runs: [{ cycle: 0 }, { cycle: 1 }] }],
    });
    const study = await loadStudy(dir);
    const key = study.runs[0]!.key;
    writeFileSync(
      join(dir, runFiles(key).metrics),
      `${scrapes()
        .map((s) => JSON.stringify(s))
        .join('\n')}\nnot a scrape\n`,
    );
    const warnings: string[] = [];
    const { files } = await writeStudyReport(dir, {
      logger: { error() {}, info() {}, debug() {}, warn: (m: string) => warnings.push(m) },
    });
    const html = readFileSync(files.report, 'utf8');
    const trace = html.slice(html.indexOf(`data-run="${key}"`));
    const figure = trace.slice(trace.indexOf('<figure class="server-metrics">'));
    const chart = figure.slice(0, figure.indexOf('</figure>'));
    expect(chart).toContain('Server: requests');
    expect(chart).toContain('Server: KV cache used (%)');
    expect(chart).toContain('Server: generated tokens/s');
    expect(chart).toContain(`runs/${key}.metrics.jsonl`);
    // The power trace comes first in the same panel.
    expect(trace.indexOf('Power (W)')).toBeLessThan(trace.indexOf('server-metrics'));
    expect(html.match(/class="server-metrics"/g)).toHaveLength(1);
    expect(warnings.join('\n')).toMatch(/metrics\.jsonl: 1 line\(s\) are not metric scrapes/);
    const read = await readRunServerMetrics((await loadStudy(dir)).runs[0]!);
    expect(read?.scrapes).toHaveLength(4);
    expect(await readRunServerMetrics(study.runs[1]!)).toBeNull();
  });

  it('the dry run shows each config’s exact server command line, {port} as written', () => {
    const plan = {
      name: 's',
      designHash: '0123456789abcdef',
      execution: { cycles: 1, order: 'sequential', experiment_gap_s: 0, cycle_gap_s: 0 },
      configs: [64, 256].map((seqs, index) => ({
        index,
        label: `max-num-seqs=${seqs}`,
        configHash: `${index}123456789abcdef`,
        config: {
          engine: 'openai',
          server: {
            argv: ['vllm', 'serve', 'Qwen/Qwen3-8B', '--port', '{port}'],
            args: { 'max-num-seqs': seqs, 'enable-prefix-caching': true, quantization: null },
            env: { VLLM_LOGGING_LEVEL: 'WARNING' },
          },
        },
      })),
      skipped: [],
      runs: [],
    };
    const text = renderPlan(plan);
    expect(text).toContain('Servers (llem starts one per run');
    expect(text).toContain(
      '  1  VLLM_LOGGING_LEVEL=WARNING vllm serve Qwen/Qwen3-8B --port {port} --max-num-seqs 64 --enable-prefix-caching',
    );
    expect(text).toContain(
      '  2  VLLM_LOGGING_LEVEL=WARNING vllm serve Qwen/Qwen3-8B --port {port} --max-num-seqs 256 --enable-prefix-caching',
    );
    const json = planToJson(plan) as { configs: { serverArgv?: string[] }[] };
    expect(json.configs[1]?.serverArgv?.slice(-3)).toEqual([
      '--max-num-seqs',
      '256',
      '--enable-prefix-caching',
    ]);
  });
});
