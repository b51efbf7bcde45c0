// The many-GPU benchmark's worker: the real `defineWorker` plumbing (built), a handler that
// holds its GPU for BENCH_RUN_MS (default 2 s), as a measured run would.
import { defineWorker } from '../dist/worker-entry.js';

const ms = Number(process.env.BENCH_RUN_MS ?? 2000);
defineWorker(async (task) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { key: task.key, devices: task.devices ?? null };
});
