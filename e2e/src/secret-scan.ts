import { createReadStream, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type KubeClient, type KubeObject, RESOURCES } from '@kdc/shared';

// After the e2e suite: every log the platform, the controllers and the tenant pods wrote, and
// every event and status left on the management apiserver, must hold no token, wrapped key,
// private key or test plaintext. A finding names the file, the line and the kind, never the value.

export interface SecretPattern {
  kind: string;
  re: RegExp;
}

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  { kind: 'OpenBao/Vault token', re: /\bhv[sbr]\.[A-Za-z0-9_-]{20,}/ },
  { kind: 'Transit ciphertext (a wrapped key)', re: /\bvault:v\d+:[A-Za-z0-9+/]{24,}/ },
  { kind: 'ServiceAccount token (JWT)', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: 'private key', re: /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/ },
];

/** Plaintexts the tests store in tenant Secrets and backups: none may ever reach a log. */
export const TEST_PLAINTEXTS: readonly string[] = [
  'correct horse battery staple',
  'victim row',
  'a row written before the upgrade',
];

export interface Finding {
  file: string;
  line: number;
  kind: string;
}

export function scanLine(text: string, literals: readonly { kind: string; value: string }[]): string[] {
  const kinds = SECRET_PATTERNS.filter((p) => p.re.test(text)).map((p) => p.kind);
  for (const { kind, value } of literals) if (value && text.includes(value)) kinds.push(kind);
  return kinds;
}

export async function scanFile(file: string, literals: readonly { kind: string; value: string }[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    for (const kind of scanLine(text, literals)) findings.push({ file, line, kind });
  }
  return findings;
}

/** Every regular file under `dir` (logs, dumps), recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return stat.isDirectory() ? filesUnder(path) : stat.isFile() ? [path] : [];
  });
}

/** Events, and the status of every KdcCluster and KMSKey, as JSON lines in `file`. */
export async function dumpClusterState(kube: KubeClient, file: string): Promise<void> {
  const lists = await Promise.all([
    kube.list<KubeObject>(RESOURCES.event),
    kube.list<KubeObject>(RESOURCES.kdcCluster),
    kube.list<KubeObject>(RESOURCES.kmsKey),
  ]);
  const lines = lists
    .flatMap((l) => l.items)
    .map((o) =>
      JSON.stringify({
        kind: o.kind,
        metadata: { namespace: o.metadata?.namespace, name: o.metadata?.name, annotations: o.metadata?.annotations },
        status: o.status,
        message: o.message,
        reason: o.reason,
      }),
    );
  writeFileSync(file, `${lines.join('\n')}\n`);
}
