import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../tools/ensure-binaries.sh', import.meta.url));

export type BinaryName =
  | 'etcd'
  | 'etcdctl'
  | 'etcdutl'
  | 'kube-apiserver'
  | 'kubectl'
  | 'vault'
  | 'minio'
  | 'helm'
  | 'kms-load'
  | 'vault-kubernetes-kms'
  | 'registry';
export type ToolName =
  'etcd' | 'kubernetes' | 'vault' | 'minio' | 'helm' | 'kms-load' | 'vault-kubernetes-kms' | 'registry';

/**
 * Paths of the real server binaries: from KDC_BIN_DIR, the cache, or a build from the Go module
 * proxy (progress on stderr). Fails loudly: a test that needs a server must never skip.
 */
export async function ensureBinaries(tools: ToolName[] = []): Promise<Record<BinaryName, string>> {
  const child = spawn('bash', [SCRIPT, ...tools], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0)
    throw new Error(
      `e2e/tools/ensure-binaries.sh ${tools.join(' ')} failed with exit code ${code}; see its output above`,
    );
  const paths: Partial<Record<BinaryName, string>> = {};
  for (const line of out.split('\n')) {
    const [name, path] = line.split('=');
    if (name && path) paths[name as BinaryName] = path;
  }
  return paths as Record<BinaryName, string>;
}
