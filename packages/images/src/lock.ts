import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// One image build at a time per cache: builds share work dirs, the buildah storage and the
// layouts, so a second `npm run images`, `npm start` or test process waits for the first (then
// finds its images cached). A lock whose process is gone is taken over.

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export async function withBuildLock<T>(dir: string, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'build.lock');
  let waitingFor: number | undefined;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number(readFileSafe(join(lock, 'pid')));
    // A lock without a pid for a minute was left by a process killed between mkdir and write.
    const orphan = !pid && Date.now() - mtime(lock) > 60_000;
    if ((pid && !alive(pid)) || orphan) {
      log(`taking over the build lock of a process that is gone (${pid || 'no pid'})`);
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (pid !== waitingFor) log(`waiting for another image build (pid ${pid || '?'}) to finish`);
    waitingFor = pid;
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}
