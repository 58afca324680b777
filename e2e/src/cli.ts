// `npm run platform -- up|down|status|smoke`: the real local platform from the command line.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive, killGroup } from './process.ts';
import { removePlatformDir, startPlatform, type PlatformState } from './platform.ts';

const POINTER = process.env.KDC_PLATFORM_POINTER ?? join(tmpdir(), 'kdc-platform-current.json');

function readState(): PlatformState | null {
  if (!existsSync(POINTER)) return null;
  const { dir } = JSON.parse(readFileSync(POINTER, 'utf8')) as { dir: string };
  const file = join(dir, 'platform.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as PlatformState) : null;
}

const pids = (s: PlatformState) => ({
  etcd: s.etcd.pid,
  'kube-apiserver': s.management.pid,
  openbao: s.openbao.pid,
  s3: s.s3.pid,
});

async function up(): Promise<void> {
  const existing = readState();
  if (existing && Object.values(pids(existing)).some(pidAlive)) {
    console.error(`a platform is already running from ${existing.dir}; run "npm run platform -- down" first`);
    process.exit(1);
  }
  const platform = await startPlatform({ detached: true });
  writeFileSync(POINTER, JSON.stringify({ dir: platform.state.dir }));
  const s = platform.state;
  console.log(`platform up in ${s.dir}
  kubeconfig      export KUBECONFIG=${s.management.kubeconfig}
  kube-apiserver  ${s.management.url}   (${s.versions.kubeApiserver})
  etcd            ${s.etcd.endpoint}   (${s.versions.etcd})
  openbao         ${s.openbao.url}   (${s.versions.openbao}; root token in ${join(s.dir, 'openbao', 'init.json')})
  s3              ${s.s3.endpoint}   bucket ${s.s3.bucket}   (${s.versions.s3})
  logs            ${s.logDir}
stop it with: npm run platform -- down`);
}

async function down(): Promise<void> {
  const state = readState();
  if (!state) {
    console.log('no platform is running');
    return;
  }
  for (const [name, pid] of Object.entries(pids(state))) {
    await killGroup(pid);
    console.log(`stopped ${name} (pid ${pid})`);
  }
  removePlatformDir(state.dir, true);
  rmSync(POINTER, { force: true });
  console.log(`removed ${state.dir} (logs kept in ${state.logDir})`);
}

function status(): void {
  const state = readState();
  if (!state) {
    console.log('no platform is running');
    process.exit(3);
  }
  const rows = Object.entries(pids(state)).map(([name, pid]) => ({ name, pid, running: pidAlive(pid) }));
  for (const row of rows)
    console.log(`${row.name.padEnd(15)} pid ${String(row.pid).padEnd(8)} ${row.running ? 'running' : 'NOT RUNNING'}`);
  console.log(`kubeconfig      ${state.management.kubeconfig}`);
  process.exit(rows.every((r) => r.running) ? 0 : 1);
}

/** Starts everything, reports versions and readiness times as one JSON line, stops, checks. */
async function smoke(): Promise<void> {
  const platform = await startPlatform();
  const s = platform.state;
  await platform.stop({ keepLogs: false });
  const leftovers = Object.entries(pids(s))
    .filter(([, pid]) => pidAlive(pid))
    .map(([name]) => name);
  const result = {
    ok: leftovers.length === 0,
    versions: s.versions,
    ready_ms: s.readyMs,
    processes_left: leftovers,
  };
  console.log(JSON.stringify(result));
  if (leftovers.length) process.exit(1);
}

const command = process.argv[2];
const commands: Record<string, () => Promise<void> | void> = { up, down, status, smoke };
const run = command ? commands[command] : undefined;
if (!run) {
  console.error('usage: npm run platform -- up|down|status|smoke');
  process.exit(2);
}
try {
  await run();
} catch (error) {
  console.error(`platform ${command} failed: ${(error as Error).message}`);
  process.exit(1);
}
