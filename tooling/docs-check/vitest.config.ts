import { llemVitestConfig } from '@llem/vitest-config';

export default llemVitestConfig();
