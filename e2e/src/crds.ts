import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { type KubeClient, type KubeObject, renderCrds, RESOURCES } from '@kdc/shared';
import { waitFor } from './wait.ts';

export const KAMAJI_CRD_FILES = ['kamaji.clastix.io_tenantcontrolplanes.yaml', 'kamaji.clastix.io_datastores.yaml'];
export const KAMAJI_FIXTURE_DIR = fileURLToPath(new URL('../fixtures/kamaji/', import.meta.url));

const CRD_REF = RESOURCES.customResourceDefinition;

export function kamajiCrds(): KubeObject[] {
  return KAMAJI_CRD_FILES.flatMap((file) =>
    parseAllDocuments(readFileSync(`${KAMAJI_FIXTURE_DIR}${file}`, 'utf8')).map((d) => d.toJS() as KubeObject),
  );
}

export function platformCrds(): KubeObject[] {
  return Object.values(renderCrds()).map((text) => parseAllDocuments(text)[0]!.toJS() as KubeObject);
}

/** Server-side applies CRDs and waits until the apiserver reports them Established. */
export async function applyCrds(client: KubeClient, crds: KubeObject[]): Promise<void> {
  for (const crd of crds) {
    await client.apply({ ...CRD_REF, name: crd.metadata!.name }, crd, 'kdc-platform');
  }
  for (const crd of crds) {
    await waitFor(
      `CRD ${crd.metadata!.name} to be Established`,
      async () => {
        const live = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({
          ...CRD_REF,
          name: crd.metadata!.name,
        });
        return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { timeoutMs: 30_000 },
    );
  }
}
