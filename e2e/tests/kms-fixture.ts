import { kmsTenant as start, type KmsTenant, type OpenBaoTarget } from '../src/kms-tenant.ts';
import { platform } from './helpers.ts';

export { etcdKey, type KmsTenant } from '../src/kms-tenant.ts';

/** A KMS-encrypted tenant on the test run's platform (see src/kms-tenant.ts). */
export const kmsTenant = (input: { prefix: string; openbao?: OpenBaoTarget; pluginArgs?: string[]; role?: string; startApiserver?: boolean }): Promise<KmsTenant> => start(platform(), input);
