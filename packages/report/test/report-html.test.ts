import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeStudyReport } from '../src/index';
import { buildStudyDir, standardStudy } from './fixture-study';

const CHROMIUM = process.env.LLEM_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) {
  // Loud on purpose: a skipped browser test must not look like a pass.
  console.warn(
    `\n!!! report-html: ${CHROMIUM} not found, SKIPPING the headless Chromium test.\n!!! Install it with: apt-get install -y chromium   (CI installs it in .ci/prepare)\n`,
  );
}

describe('report.html (static checks)', () => {
  it('is self-contained: no external URL, script or stylesheet', async () => {
    const { files } = await writeStudyReport(standardStudy());
    const html = readFileSync(files.report, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    expect(html).toContain('batch-vs-threads');
    expect(html).toContain('NVIDIA H100 80GB HBM3');
    expect(html).toContain('driver 550.54.15');
    expect(html).toContain('11 completed');
    expect(html).toContain('1 failed');
    expect(html).toContain('1 skipped configs');
    // Cycles are numbered from 1 wherever a person reads them (run keys keep _c0).
    expect(html).toMatch(/· cycle 1 · [0-9a-f]{16}_c0</);
    expect(html).not.toMatch(/· cycle 0 ·/);
    // 2–3 completed cycles per config: the intervals come with a caution.
    expect(html).toMatch(
      /<p class="note caution" id="small-sample">Intervals from only 2–3 completed cycles \(every config\) are optimistic/,
    );
  });

  it('escapes config labels and error messages', async () => {
    const dir = buildStudyDir({
      configs: [
        {
          label: '<img src=x onerror=alert(1)>',
          runs: [
            { cycle: 0 },
            {
              cycle: 1,
              status: 'failed',
              error: { type: 'crash', message: '<b>boom</b> & "quote"' },
            },
          ],
        },
      ],
    });
    const html = readFileSync((await writeStudyReport(dir)).files.report, 'utf8');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>boom</b>');
    expect(html).toContain('&lt;b&gt;boom&lt;/b&gt; &amp; &quot;quote&quot;');
  });

  it('falls back to latency vs throughput when no energy was measured, and says so', async () => {
    const dir = buildStudyDir({
      gpu: false,
      configs: ['t=1', 't=2'].map((label, i) => ({
        label,
        runs: [0, 1].map((c) => ({
          cycle: c,
          energyPerTokenJ: null,
          tokensPerS: 10 + i * 5 + c,
          timeseries: false,
        })),
      })),
    });
    const report = await writeStudyReport(dir);
    expect(report.pareto.x.metric).toBe('ttftP50Ms');
    expect(report.paretoNote).toMatch(/^Energy per output token was not measured for any config/);
    const html = readFileSync(report.files.report, 'utf8');
    expect(html).toContain('was not measured for any config');
    // Asked for explicitly, the energy axes are kept, empty, and the note says why.
    const asked = await writeStudyReport(dir, {
      paretoAxes: [
        { metric: 'energyPerOutputTokenJ', direction: 'min' },
        { metric: 'outputTokensPerS', direction: 'max' },
      ],
    });
    expect(asked.pareto.points).toEqual([]);
    expect(asked.paretoNote).toBe(
      'No config has both Energy per output token and Output tokens/s, so the frontier is empty.',
    );
    expect(html).toContain('No timeseries with power or temperature');
  });
  it('groups one warning repeated on every run into one line naming the runs', async () => {
    const warning = {
      code: 'run-too-short',
      message: 'the measurement window lasted 1.2 s (< 2 s)',
    };
    const dir = buildStudyDir({
      configs: [
        { label: 'a', runs: [0, 1, 2, 3, 4, 5].map((c) => ({ cycle: c, warnings: [warning] })) },
      ],
    });
    const html = readFileSync((await writeStudyReport(dir)).files.report, 'utf8');
    const items = html.match(/<li><code>run-too-short<\/code>[\s\S]*?<\/li>/g) ?? [];
    expect(items).toHaveLength(1);
    expect(items[0]).toContain('6 runs: ');
    expect(html).not.toContain('id="small-sample"'); // 6 cycles: no caution
    expect(items[0]).toContain('and 1 more');
  });

  it('still renders when every run failed or none has run yet', async () => {
    const dir = buildStudyDir({
      status: 'interrupted',
      configs: [
        {
          label: 'oom',
          runs: [
            {
              cycle: 0,
              status: 'failed',
              error: { type: 'crash', message: 'CUDA error: out of memory' },
            },
            { cycle: 1, status: 'pending' },
          ],
        },
      ],
    });
    const report = await writeStudyReport(dir);
    expect(report.summaries[0]).toMatchObject({ completed: 0, failed: 1, unfinished: 1 });
    const html = readFileSync(report.files.report, 'utf8');
    expect(html).toContain('No config has both metrics measured');
    expect(html).toContain('1 not run yet');
    expect(html).toContain('CUDA error: out of memory');
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('report.html in headless Chromium', () => {
  it('shows SVG plots, a non-empty sortable table and no console errors', async () => {
    const { chromium } = await import('playwright-core');
    const dir = standardStudy();
    const { files } = await writeStudyReport(dir);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning')
          problems.push(`${msg.type()}: ${msg.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('request', (req) => {
        if (!req.url().startsWith('file://')) requests.push(req.url());
      });
      await page.goto(pathToFileURL(files.report).href, { waitUntil: 'load' });

      // Pareto scatter: one dot per config, labels drawn, the frontier in its colour.
      const pareto = page.locator('#pareto svg');
      await expect(pareto.count()).resolves.toBe(1);
      expect(await pareto.locator('circle').count()).toBe(4);
      const labels = await pareto.locator('text').allTextContents();
      expect(labels).toContain('batch_size=64,threads=2');
      expect(await pareto.locator('circle[fill="#d9480f"]').count()).toBe(2);
      const box = await pareto.boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(box!.height).toBeGreaterThan(200);

      // Bars with CI whiskers, one chart per measured metric.
      const bars = page.locator('#bars figure');
      expect(await bars.count()).toBeGreaterThanOrEqual(8);
      expect(
        await page.locator('#bars figure[data-metric="energyPerOutputTokenJ"] svg rect').count(),
      ).toBe(4);

      // Latency distribution and a power trace with a path that has many points.
      expect(await page.locator('#latency svg').count()).toBeGreaterThanOrEqual(2);
      const visibleTrace = page.locator('.trace:not([hidden]) svg g[aria-label="line"] path');
      expect(await visibleTrace.count()).toBeGreaterThan(0);
      const d = (await visibleTrace.first().getAttribute('d')) ?? '';
      expect(d.length).toBeGreaterThan(500);
      // The select box switches runs.
      const options = await page.locator('#trace-select option').count();
      expect(options).toBe(11);
      const second = await page.locator('#trace-select option').nth(1).getAttribute('value');
      await page.selectOption('#trace-select', second!);
      expect(await page.locator(`.trace[data-run="${second}"]`).isVisible()).toBe(true);
      expect(await page.locator('.trace:not([hidden])').count()).toBe(1);

      // The sortable table: 4 configs; clicking a header sorts by that column.
      const table = page.locator('#config-table');
      expect(await table.locator('tbody tr').count()).toBe(4);
      const tpsHeader = table.locator('th', { hasText: 'Output tokens/s' });
      await tpsHeader.click();
      await tpsHeader.click(); // descending
      const firstLabel = await table
        .locator('tbody tr')
        .first()
        .locator('td')
        .first()
        .textContent();
      expect(firstLabel).toContain('batch_size=256,threads=1');
      expect(await page.locator('#run-table tbody tr').count()).toBe(12);
      expect(await page.locator('#warnings li').count()).toBeGreaterThanOrEqual(3);

      const shotDir = join(dir, 'artifacts');
      mkdirSync(shotDir, { recursive: true });
      const shot = join(shotDir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`report screenshot: ${shot}`);
      expect(readFileSync(shot).length).toBeGreaterThan(20_000);

      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
