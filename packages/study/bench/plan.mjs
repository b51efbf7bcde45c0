// The benchmarks' plans: `n` one-run configs (`{ index }`), as `@llem/domain`'s `planGrid` builds them.
import { planGrid } from '@llem/domain';

/** A plan of `n` configs × 1 cycle named `name`, with `execution` as given. */
export function benchPlan(n, name, execution = {}) {
  const configs = Array.from({ length: n }, (_, index) => ({ index }));
  return planGrid(configs, { name, execution, label: (c) => `run${c.index}` });
}
