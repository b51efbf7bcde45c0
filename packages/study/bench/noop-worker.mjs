// The no-op worker of the benchmark: the real `defineWorker` plumbing (built), a trivial handler.
import { defineWorker } from '../dist/worker-entry.js';

defineWorker((task) => ({ key: task.key, residualCheck: task.residualCheck }));
