import { fileURLToPath } from 'node:url';

export const CHART_CRD_DIR = fileURLToPath(new URL('../../../../charts/kdc-encryption/files/crds/', import.meta.url));
