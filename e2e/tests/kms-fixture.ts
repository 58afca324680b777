import { afterAll, beforeAll } from 'vitest';
import { kmsClient, type KmsClient } from '../src/kms.ts';
import { kmsTenant as start, type KmsTenant, type OpenBaoTarget } from '../src/kms-tenant.ts';
import { platform } from './helpers.ts';

export { etcdKey, type KmsTenant } from '../src/kms-tenant.ts';

/** A KMS-encrypted tenant on the test run's platform (see src/kms-tenant.ts). */
export const kmsTenant = (input: {
  prefix: string;
  openbao?: OpenBaoTarget;
  pluginArgs?: string[];
  role?: string;
  startApiserver?: boolean;
}): Promise<KmsTenant> => start(platform(), input);

/** One tenant and a gRPC client on its plugin socket for a whole describe block, stopped after it. */
export function useKmsTenant(prefix: string): { t: KmsTenant; client: KmsClient } {
  const kms = {} as { t: KmsTenant; client: KmsClient };
  beforeAll(async () => {
    kms.t = await kmsTenant({ prefix });
    kms.client = kmsClient(kms.t.plugin.socket);
  });
  afterAll(async () => {
    kms.client?.close();
    await kms.t?.stop();
  });
  return kms;
}
