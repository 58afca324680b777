import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManagedProcess } from '../src/process.ts';
import { waitFor } from '../src/wait.ts';

/**
 * The grpc-go floor: kms-load's own KMS v2 server (Status a fixed answer, Encrypt and Decrypt
 * echo their input), in its own process like a plugin. A plugin that costs nothing.
 */
export async function startGrpcGoFloor(
  kmsLoad: string,
  socket: string,
  logDir: string,
  name = 'bench-grpc-go-floor',
  /** e.g. `-pad 57 -key-id-bytes 40`: rows the size another plugin's make. */
  extraArgs: string[] = [],
): Promise<ManagedProcess> {
  const server = ManagedProcess.start({
    name,
    binary: kmsLoad,
    args: ['serve', '-socket', socket, ...extraArgs],
    logFile: join(logDir, `${name}.log`),
  });
  await waitFor('the grpc-go floor server to listen', () => {
    if (!server.running) throw new Error(`kms-load serve exited:\n${server.tail()}`);
    return Promise.resolve(readFileSync(server.logFile, 'utf8').includes('listening'));
  });
  return server;
}
