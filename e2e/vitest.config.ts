import { mergeConfig } from 'vitest/config';
import { base } from '../vitest.shared.ts';

// One real platform (etcd, kube-apiserver, OpenBao, S3) for the whole run, started by the
// global setup; test files run in parallel against it, each in its own namespaces and keys.
export default mergeConfig(base, {
  test: {
    globalSetup: ['./tests/global-setup.ts'],
    setupFiles: ['./tests/setup-logs-on-failure.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 4,
  },
});
