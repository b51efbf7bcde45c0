import { describe, expect, it } from 'vitest';
import { flatDomain, paretoChart, traceChart } from '../src/internal/charts';
import type { ParetoResult } from '../src/pareto';
import type { TimeseriesSample } from '../src/timeseries';

/** The text of every tick label in a chart's axes, in document order. */
function tickLabels(svg: string, axis: 'x' | 'y'): string[] {
  const group = new RegExp(`aria-label="${axis}-axis tick label"[^>]*>(.*?)</g>`, 's').exec(svg);
  return [...(group?.[1] ?? '').matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] ?? '');
}

/** The `<line>`s of each `rule` mark, one list per mark. */
function rules(svg: string): { x1: number; x2: number; y1: number; y2: number }[][] {
  return [...svg.matchAll(/<g[^>]*aria-label="rule"[^>]*>(.*?)<\/g>/gs)].map((g) =>
    [...(g[1] ?? '').matchAll(/<line([^>]*)\/?>/g)].map((l) => {
      const attr = (name: string) => Number(new RegExp(`${name}="([^"]+)"`).exec(l[1] ?? '')?.[1]);
      return { x1: attr('x1'), x2: attr('x2'), y1: attr('y1'), y2: attr('y2') };
    }),
  );
}

const flatTrace = (watts: number): TimeseriesSample[] =>
  Array.from({ length: 20 }, (_, i) => ({
    tS: i * 0.1,
    device: 'gpu0',
    powerW: watts,
    temperatureC: 40 + (i % 3),
  }));

describe('axis ticks of a flat series', () => {
  it('flatDomain pads a flat series by ±5% (at least ±1) and leaves any other alone', () => {
    expect(flatDomain([250, 250, 250])).toEqual([237.5, 262.5]);
    expect(flatDomain([0, 0])).toEqual([-1, 1]);
    expect(flatDomain([12])).toEqual([11, 13]);
    expect(flatDomain([240, 260])).toBeUndefined();
    expect(flatDomain([])).toBeUndefined();
  });

  it('a constant 250 W trace gets round power ticks, not 250.000000', () => {
    const svg = traceChart(flatTrace(250)) ?? '';
    const power = svg.slice(0, svg.indexOf('Temperature'));
    expect(tickLabels(power, 'y')).toEqual(['240', '245', '250', '255', '260']);
    expect(svg).not.toMatch(/\d\.\d{4,}</);
  });

  it('a Pareto plot of one config has round ticks on both axes', () => {
    const one: ParetoResult = {
      x: { metric: 'energyPerOutputTokenJ', direction: 'min' },
      y: { metric: 'outputTokensPerS', direction: 'max' },
      points: [
        {
          configHash: 'a',
          label: 'only',
          x: 2,
          y: 250,
          xInterval: null,
          yInterval: null,
          onFrontier: true,
        },
      ],
      excluded: [],
    };
    const svg = paretoChart(one);
    expect(tickLabels(svg, 'y')).toContain('250');
    expect(tickLabels(svg, 'x')).toContain('2.0');
    expect(svg).not.toMatch(/\d\.\d{4,}</);
  });
});

describe('the Pareto plot shows each point’s interval', () => {
  const pareto: ParetoResult = {
    x: { metric: 'energyPerOutputTokenJ', direction: 'min' },
    y: { metric: 'outputTokensPerS', direction: 'max' },
    points: [
      {
        configHash: 'a',
        label: 'A',
        x: 0.5,
        y: 100,
        xInterval: { low: 0.45, high: 0.55 },
        yInterval: { low: 95, high: 105 },
        onFrontier: true,
      },
      {
        configHash: 'b',
        label: 'B',
        x: 0.8,
        y: 90,
        xInterval: { low: 0.7, high: 0.9 },
        yInterval: { low: 80, high: 100 },
        onFrontier: false,
      },
      // One cycle: no interval, so no whisker.
      {
        configHash: 'c',
        label: 'C',
        x: 1,
        y: 50,
        xInterval: null,
        yInterval: null,
        onFrontier: false,
      },
    ],
    excluded: [],
  };

  it('draws a horizontal whisker for the x interval and a vertical one for the y interval', () => {
    const svg = paretoChart(pareto);
    const [horizontal = [], vertical = []] = rules(svg);
    expect(horizontal).toHaveLength(2);
    expect(vertical).toHaveLength(2);
    for (const line of horizontal) {
      expect(line.y1).toBe(line.y2);
      expect(line.x2).toBeGreaterThan(line.x1);
    }
    for (const line of vertical) {
      expect(line.x1).toBe(line.x2);
      expect(Math.abs(line.y2 - line.y1)).toBeGreaterThan(0);
    }
    // B's x interval (0.7–0.9) is twice as wide as A's (0.45–0.55) on the same linear scale.
    const [a, b] = horizontal as [(typeof horizontal)[number], (typeof horizontal)[number]];
    expect(b.x2 - b.x1).toBeCloseTo(2 * (a.x2 - a.x1), 6);
  });

  it('says the interval in each point’s tooltip', () => {
    const svg = paretoChart(pareto);
    expect(svg).toContain('x 0.5 (95% CI 0.45–0.55)');
    expect(svg).toContain('y 100 (95% CI 95–105)');
    expect(svg).toContain('x 1 (one cycle: no interval)');
  });
});
