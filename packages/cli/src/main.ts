// kubectl-kdc: operator commands (kubectl finds it on PATH as the plugin `kubectl kdc`).
export const USAGE = `kubectl kdc - per-tenant etcd encryption for KdcClusters

Usage:
  kubectl kdc status <cluster> [-n namespace]
  kubectl kdc rewrap-etcd <cluster> [-n namespace]
  kubectl kdc backups list|restore|rewrap <cluster> [-n namespace]
  kubectl kdc keys min-decryption <kmskey> --to N [--confirm]
  kubectl kdc version
`;

export const COMMANDS = ['status', 'rewrap-etcd', 'backups', 'keys', 'version', 'help'] as const;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(argv: string[]): Promise<CliResult> {
  const [command] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') return { code: 0, stdout: USAGE, stderr: '' };
  if (command === 'version') return { code: 0, stdout: 'kubectl-kdc 0.1.0\n', stderr: '' };
  if (!(COMMANDS as readonly string[]).includes(command)) {
    return { code: 2, stdout: '', stderr: `unknown command "${command}": run "kubectl kdc help" for the list of commands\n` };
  }
  return { code: 1, stderr: `"${command}" is not available in this build yet\n`, stdout: '' };
}
