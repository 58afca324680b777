import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadKmsV2 } from '@kdc/kms-plugin';
import { PLUGIN_MAIN } from './images.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';
import { nodeProgram } from './programs.ts';

export interface KmsPluginProcess {
  socket: string;
  metricsUrl: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Runs our real plugin (the sidecar's program) as a process on a socket in `dir`. */
export async function startKmsPlugin(input: {
  dir: string;
  logDir: string;
  name: string;
  args: string[];
  env?: Record<string, string>;
  waitHealthy?: boolean;
}): Promise<KmsPluginProcess> {
  const socket = join(input.dir, `${input.name}.sock`);
  const metricsPort = await freePort();
  const process = ManagedProcess.start({
    name: input.name,
    binary: globalThis.process.execPath,
    args: [
      ...(globalThis.process.env.KDC_PLUGIN_NODE_OPTIONS ?? '--max-old-space-size=64').split(' ').filter(Boolean),
      ...nodeProgram(PLUGIN_MAIN),
      `--socket=${socket}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      ...input.args,
    ],
    logFile: join(input.logDir, `${input.name}.log`),
    env: input.env,
  });
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  // The socket path may already exist (a stale one the plugin will replace): its log line is the signal.
  await waitFor(
    `${input.name} to listen`,
    async () => {
      if (!process.running) throw new Error(`${input.name} exited:\n${process.tail()}`);
      return existsSync(socket) && readFileSync(process.logFile, 'utf8').includes('"msg":"kms-plugin listening"');
    },
    { timeoutMs: 60_000 },
  );
  if (input.waitHealthy ?? true) {
    await waitFor(`${input.name} to be ready`, async () => (await fetch(`${metricsUrl}/readyz`)).status === 200, {
      timeoutMs: 30_000,
    });
  }
  return { socket, metricsUrl, process, stop: () => process.stop() };
}

export interface KmsClient {
  status(): Promise<{ version: string; healthz: string; key_id: string }>;
  encrypt(
    plaintext: Buffer,
    uid?: string,
  ): Promise<{ ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> }>;
  decrypt(request: {
    ciphertext: Buffer;
    key_id: string;
    uid?: string;
    annotations?: Record<string, Buffer>;
  }): Promise<{ plaintext: Buffer }>;
  close(): void;
}

/** A KMS v2 client on the socket, dialled the way kube-apiserver dials (authority localhost). */
export function kmsClient(socket: string): KmsClient {
  const Ctor = makeGenericClientConstructor(loadKmsV2().service, 'KeyManagementService');
  const client = new Ctor(`unix:${socket}`, credentials.createInsecure(), {
    'grpc.default_authority': 'localhost',
  }) as Client &
    Record<string, (req: unknown, opts: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void>;
  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) =>
      client[method]!(request, { deadline: Date.now() + 5000 }, (error, response) =>
        error ? reject(error) : resolve(response as T),
      ),
    );
  return {
    status: () => call('Status', {}),
    encrypt: (plaintext, uid = 'e2e') => call('Encrypt', { plaintext, uid }),
    decrypt: (request) => call('Decrypt', { uid: 'e2e', ...request }),
    close: () => client.close(),
  };
}

/** The EncryptionConfiguration of SPEC 3.4 pointed at a local socket. */
export function writeKmsEncryptionConfig(file: string, socket: string, resources: string[] = ['secrets']): void {
  writeFileSync(
    file,
    [
      'apiVersion: apiserver.config.k8s.io/v1',
      'kind: EncryptionConfiguration',
      'resources:',
      `  - resources: [${resources.join(', ')}]`,
      '    providers:',
      '      - kms:',
      '          apiVersion: v2',
      '          name: kube-dc-kms-plugin',
      `          endpoint: unix://${socket}`,
      '          timeout: 3s',
      '      - identity: {}',
    ].join('\n'),
  );
}

/** An EncryptionConfiguration encrypting Secrets with a new random local aesgcm key `name`: no plugin. */
export function writeAesgcmEncryptionConfig(file: string, name = 'key1'): void {
  writeFileSync(
    file,
    [
      'apiVersion: apiserver.config.k8s.io/v1',
      'kind: EncryptionConfiguration',
      'resources:',
      '  - resources: [secrets]',
      '    providers:',
      '      - aesgcm:',
      '          keys:',
      `            - name: ${name}`,
      `              secret: ${randomBytes(32).toString('base64')}`,
      '      - identity: {}',
    ].join('\n'),
    { mode: 0o600 },
  );
}

// The stored value's EncryptedObject (k8s.io/apiserver kmsv2/v2/api.proto), for reading etcd bytes.
const root = protobuf.Root.fromJSON({
  nested: {
    v2: {
      nested: {
        EncryptedObject: {
          fields: {
            encryptedData: { type: 'bytes', id: 1 },
            keyID: { type: 'string', id: 2 },
            encryptedDEKSource: { type: 'bytes', id: 3 },
            annotations: { keyType: 'string', type: 'bytes', id: 4 } as protobuf.IField,
            encryptedDEKSourceType: { type: 'int32', id: 5 },
          },
        },
      },
    },
  },
});
const EncryptedObject = root.lookupType('v2.EncryptedObject');

export interface StoredEnvelope {
  prefix: string;
  encryptedData: Buffer;
  keyID: string;
  encryptedDEKSource: Buffer;
  annotations: Record<string, Buffer>;
  encryptedDEKSourceType: number;
}

/** Splits `k8s:enc:kms:v2:<provider>:` + protobuf and decodes the protobuf. */
export function parseStoredValue(raw: Buffer): StoredEnvelope {
  const text = raw.toString('latin1');
  const match = /^k8s:enc:kms:v2:[^:]+:/.exec(text);
  if (!match) throw new Error(`not a KMS v2 value: starts with ${JSON.stringify(text.slice(0, 24))}`);
  const decoded = EncryptedObject.toObject(EncryptedObject.decode(raw.subarray(match[0].length)), {
    bytes: Buffer,
    defaults: true,
  }) as Omit<StoredEnvelope, 'prefix'>;
  return { prefix: match[0], ...decoded };
}
