import { fileURLToPath } from 'node:url';

// The images we ship, one per program. Each is our Node 24 base plus one bundled program: the
// entry is bundled with its production dependencies into /app/main.js, the files it reads next
// to itself at run time (gRPC .proto definitions, a worker script) are copied or bundled beside it.

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

export interface ImageSpec {
  /** The image name: `<registry>/<name>:<tag>` and the Containerfile's folder. */
  name: string;
  /** The program, bundled to /app/main.js. */
  entry: string;
  /** Further scripts the program starts by file name, bundled to /app/<key>.js. */
  workers?: Record<string, string>;
  /** Files the program reads beside itself (`new URL('./proto/x.proto', import.meta.url)`), copied to /app/<key>. */
  files?: Record<string, string>;
  /** Server binaries from the binary cache (e2e/tools/ensure-binaries.sh <tool>), copied to <key> in the context. */
  binaries?: Record<string, { tool: string; binary: string }>;
}

export const IMAGES: readonly ImageSpec[] = [
  {
    name: 'k8-manager',
    entry: repo('packages/k8-manager/src/main.ts'),
    // It reads backup metadata through @kdc/backup-envelope, whose encryptor names this worker:
    // the bundle holds that code, so the file it would load is there too.
    workers: { 'crypto-worker': repo('packages/backup-envelope/src/crypto-worker.ts') },
    files: {
      'proto/etcd-kv.proto': repo('packages/shared/src/etcd/proto/etcd-kv.proto'),
    },
  },
  {
    name: 'encryption-reconciler',
    entry: repo('packages/encryption-reconciler/src/main.ts'),
  },
  {
    name: 'kms-plugin',
    entry: repo('packages/kms-plugin/src/main.ts'),
    files: { 'proto/kms-v2.proto': repo('packages/kms-plugin/src/transport/proto/kms-v2.proto') },
  },
  {
    name: 'kdc-backup',
    entry: repo('packages/backup-envelope/src/main.ts'),
    workers: { 'crypto-worker': repo('packages/backup-envelope/src/crypto-worker.ts') },
    // restore --data-dir runs etcdutl snapshot restore (static Go binary, etcd's own release).
    binaries: { 'bin/etcdutl': { tool: 'etcd', binary: 'etcdutl' } },
    files: {
      'proto/etcd-kv.proto': repo('packages/shared/src/etcd/proto/etcd-kv.proto'),
    },
  },
];

export const imageSpec = (name: string): ImageSpec => {
  const spec = IMAGES.find((i) => i.name === name);
  if (!spec) throw new Error(`unknown image ${name}: one of ${IMAGES.map((i) => i.name).join(', ')}`);
  return spec;
};
