import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  dataDir: string;
  process: ManagedProcess;
  client(): S3Client;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface S3Options {
  binary: string;
  dir: string;
  logDir: string;
  bucket?: string;
  detached?: boolean;
}

export function s3Client(input: {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}): S3Client {
  return new S3Client({
    endpoint: input.endpoint,
    region: input.region,
    forcePathStyle: true,
    credentials: { accessKeyId: input.accessKeyId, secretAccessKey: input.secretAccessKey },
    // Some S3-compatible servers reject the SDK's default CRC32 checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** MinIO on loopback with one bucket. */
export async function startS3(options: S3Options): Promise<S3Server> {
  const dataDir = join(options.dir, 's3-data');
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const consolePort = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = 'kdc-platform';
  const secretAccessKey = 'kdc-platform-secret';
  let proc!: ManagedProcess;
  const launch = async () => {
    proc = ManagedProcess.start({
      name: 's3',
      binary: options.binary,
      logFile: join(options.logDir, 's3.log'),
      detached: options.detached,
      args: ['server', dataDir, `--address=127.0.0.1:${port}`, `--console-address=127.0.0.1:${consolePort}`, '--quiet'],
      env: {
        MINIO_ROOT_USER: accessKeyId,
        MINIO_ROOT_PASSWORD: secretAccessKey,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
    });
    await waitFor(
      'S3 server to be ready',
      async () => {
        if (!proc.running) throw new Error(`S3 server exited:\n${proc.tail()}`);
        const res = await fetch(`${endpoint}/minio/health/ready`);
        return res.status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  };
  await launch();
  const server: S3Server = {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    bucket: options.bucket ?? 'kdc-backups',
    dataDir,
    get process() {
      return proc;
    },
    client: () => s3Client(server),
    stop: () => proc.stop(),
    restart: async () => {
      await proc.stop();
      await launch();
    },
  };
  const client = server.client();
  try {
    await client.send(new HeadBucketCommand({ Bucket: server.bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: server.bucket }));
  }
  client.destroy();
  return server;
}
