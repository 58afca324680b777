import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { KubeClient } from '@kdc/shared';
import { startPlatform, type PlatformState } from '../src/platform.ts';
import { bundlePrograms } from '../src/program-bundles.ts';
import { BUNDLES_ENV } from '../src/programs.ts';
import { dumpClusterState, filesUnder, scanFile, TEST_PLAINTEXTS } from '../src/secret-scan.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    platform: PlatformState;
  }
}

export default async function setup(project: TestProject) {
  // Our programs are bundled while the servers start; test workers, forked after this, inherit
  // both variables, and so does every Node process a test starts with process.env.
  const programs = mkdtempSync(join(tmpdir(), 'kdc-e2e-programs-'));
  // Pods run them as their own users (the plugin as 65532): mkdtemp's 0700 would hide them.
  chmodSync(programs, 0o755);
  process.env.NODE_COMPILE_CACHE = join(programs, 'node-compile-cache');
  const [platform, manifest] = await Promise.all([startPlatform(), bundlePrograms(programs)]);
  process.env[BUNDLES_ENV] = manifest;
  const { state } = platform;
  project.provide('platform', state);
  console.log(`platform ready in ${platform.state.readyMs.total} ms; logs in ${platform.state.logDir}`);
  return async () => {
    // What every test left behind: events and statuses join the logs, then all of it is scanned.
    await dumpClusterState(
      KubeClient.fromFile(state.management.kubeconfig),
      join(state.logDir, 'cluster-state.jsonl'),
    ).catch((error: Error) => console.error(`cannot dump events and statuses: ${error.message}`));
    await platform.stop({ keepLogs: true });
    rmSync(programs, { recursive: true, force: true });
    const literals = [
      { kind: 'the OpenBao root token', value: state.openbao.rootToken },
      { kind: 'the S3 secret key', value: state.s3.secretAccessKey },
      ...TEST_PLAINTEXTS.map((value) => ({ kind: 'a test plaintext', value })),
    ];
    const files = filesUnder(state.logDir);
    const findings = (await Promise.all(files.map((f) => scanFile(f, literals)))).flat();
    console.log(JSON.stringify({ secretScan: { files: files.length, findings: findings.length } }));
    if (findings.length) {
      const shown = findings
        .slice(0, 20)
        .map((f) => `  ${f.file}:${f.line}: ${f.kind}`)
        .join('\n');
      throw new Error(
        `${findings.length} secret(s) in the logs, events or statuses of this run (values not shown):\n${shown}`,
      );
    }
  };
}
