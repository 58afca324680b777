import { fileURLToPath } from 'node:url';

// The "registry" of the local Kamaji runner: image references -> entrypoints on this machine.
// The plugin image runs our built package exactly as its container image would.

export const KMS_PLUGIN_IMAGE = 'kdc.local/kms-plugin:dev';
const PLUGIN_MAIN = fileURLToPath(new URL('../../packages/kms-plugin/src/main.ts', import.meta.url));

export const BACKUP_IMAGE = 'kdc.local/kdc-backup:dev';
export const BACKUP_MAIN = fileURLToPath(new URL('../../packages/backup-envelope/src/main.ts', import.meta.url));

export const LOCAL_IMAGES: Record<string, string[]> = {
  [KMS_PLUGIN_IMAGE]: [process.execPath, '--conditions=source', '--max-old-space-size=96', PLUGIN_MAIN],
  [BACKUP_IMAGE]: [process.execPath, '--conditions=source', BACKUP_MAIN],
};
