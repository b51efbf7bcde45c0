import { ensureFakeNvmlBuilt } from '@llem/fake-nvml';

export default function setup(): void {
  ensureFakeNvmlBuilt();
}
