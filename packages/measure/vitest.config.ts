import { llemVitestConfig } from '@llem/vitest-config';

export default llemVitestConfig({
  // Builds the fake libnvidia-ml (a no-op when it is up to date) for the NVML energy tests.
  test: { globalSetup: ['test/global-setup.ts'] },
});
