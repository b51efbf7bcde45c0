import type { Logger } from '@llem/resilience';
import { channelEnergy, type EnergyChannel } from '../energy/channel';
import { combineEnergy } from './energy-total';
import type { Recorder, Tick } from './recorder';

export interface BaselineInput {
  recorder: Recorder;
  channels: readonly EnergyChannel[];
  durationS: number;
  sharedHost: boolean;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  signal: AbortSignal;
  logger: Logger;
}

/** Idle power before anything is loaded, and why it is unknown when it is. */
export interface Baseline {
  baselineW: number | null;
  note: string | null;
}

/**
 * Measure idle power: edge read, `duration_s` of samples, edge read, energy over the span ÷
 * its seconds. Recorded in the timeseries as the `baseline` window.
 */
export async function measureBaseline(input: BaselineInput): Promise<Baseline> {
  const { recorder, channels } = input;
  if (channels.length === 0) {
    return { baselineW: null, note: 'baseline: no energy source to measure idle power with' };
  }
  const begin = recorder.prepare('baseline');
  const b0 = recorder.read();
  const sampler = begin();
  let ticks: Tick[] = [];
  try {
    await input.sleep(input.durationS * 1000, input.signal);
  } finally {
    ticks = sampler.stop();
  }
  const b1 = recorder.read();
  const all = [b0, ...ticks.filter((t) => t.t > b0.t && t.t < b1.t), b1];
  recorder.record('baseline', b0.t, all);
  const combined = combineEnergy(
    channels.map((c, i) => channelEnergy(c, i, all)),
    [],
    input.sharedHost,
  );
  const seconds = (b1.t - b0.t) / 1000;
  const baselineW = combined.totalJ === null || seconds <= 0 ? null : combined.totalJ / seconds;
  input.logger.info(
    `baseline: ${baselineW === null ? 'not measurable' : `${baselineW.toFixed(1)} W idle`} over ${seconds.toFixed(1)} s`,
  );
  return {
    baselineW,
    note: baselineW === null ? `baseline: ${combined.reason ?? 'no reading'}` : null,
  };
}
