import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release } from 'node:os';
import type { RunEnvironment } from '@llem/domain';
import type { GpuProbe } from './gpu';

/**
 * What the run ran on: GPUs (from the probe, when there is one), CPU, OS, Node, engine and llem
 * versions. Values that cannot be read are `null`.
 */
export function snapshotEnvironment(
  probe: GpuProbe | null,
  versions: { engineVersion: string | null; llemVersion: string | null },
): RunEnvironment {
  const cpuList = cpus();
  return {
    gpus: probe ? probe.devices.map((i) => probe.info(i)) : [],
    driverVersion: probe?.driverVersion ?? null,
    cudaVersion: probe?.cudaVersion ?? null,
    cpu: {
      model: cpuList[0]?.model?.trim() || null,
      cores: cpuList.length > 0 ? cpuList.length : availableParallelism(),
    },
    os: { platform: process.platform, release: release() || null, arch: process.arch },
    nodeVersion: process.version,
    engineVersion: versions.engineVersion,
    llemVersion: versions.llemVersion,
  };
}

/**
 * The process's peak resident set size in MiB: the kernel's high-water mark (`VmHWM`) where
 * Linux exposes it, else `fallbackBytes` (the largest `rss` the sampler saw).
 */
export function peakRssMiB(
  fallbackBytes: number | null,
  statusFile = '/proc/self/status',
): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(statusFile, 'utf8'));
    if (match?.[1]) {
      const kib = Number(match[1]);
      return Math.max(kib / 1024, (fallbackBytes ?? 0) / 1024 / 1024);
    }
  } catch {
    // Not Linux: use the sampled figure.
  }
  return fallbackBytes === null ? null : fallbackBytes / 1024 / 1024;
}
