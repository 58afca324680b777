import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kdcClusterCrd, kmsKeyCrd, renderCrds, toStructural } from './generate.ts';
import { CHART_CRD_DIR } from './paths.ts';

function walk(node: unknown, visit: (n: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) return node.forEach((n) => walk(n, visit));
  if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>);
    Object.values(node).forEach((v) => walk(v, visit));
  }
}

describe('generated CRDs', () => {
  it('match the files committed in the chart (run `npx nx run shared:crds` after changing a schema)', () => {
    const generated = renderCrds();
    const committed = Object.fromEntries(
      readdirSync(CHART_CRD_DIR)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => [f, readFileSync(join(CHART_CRD_DIR, f), 'utf8')]),
    );
    expect(committed).toEqual(generated);
  });

  it('are structural: every schema node has a type, no additionalProperties:false, no anyOf', () => {
    for (const crd of [kdcClusterCrd(), kmsKeyCrd()]) {
      const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
      walk(schema.properties.spec, (n) => {
        if ('properties' in n || 'items' in n) expect(n.type).toBeDefined();
        expect(n.additionalProperties).not.toBe(false);
        expect(n.anyOf).toBeUndefined();
      });
    }
  });

  it('carry the SPEC names, short names and printer columns', () => {
    const kdc = kdcClusterCrd();
    expect(kdc.metadata.name).toBe('kdcclusters.k8s.kube-dc.com');
    expect(kdc.spec.names.shortNames).toEqual(['kdc-cl']);
    expect(kdc.spec.versions[0]!.subresources).toEqual({ status: {} });
    const kkey = kmsKeyCrd();
    expect(kkey.metadata.name).toBe('kmskeys.security.kube-dc.com');
    expect(kkey.spec.names.shortNames).toEqual(['kkey']);
    const columns = kkey.spec.versions[0]!.additionalPrinterColumns.map((c) => [c.name, c.jsonPath]);
    expect(columns).toEqual(
      expect.arrayContaining([
        ['Purpose', '.spec.purpose'],
        ['Algorithm', '.spec.algorithm'],
        ['Version', '.status.currentVersion'],
        ['Age', '.metadata.creationTimestamp'],
      ]),
    );
  });

  it('keeps status.encryption.disableMigrationProgress nullable', () => {
    const status = kdcClusterCrd().spec.versions[0]!.schema.openAPIV3Schema.properties.status as {
      properties: { encryption: { properties: Record<string, Record<string, unknown>> } };
    };
    expect(status.properties.encryption.properties.disableMigrationProgress).toMatchObject({
      type: 'integer',
      nullable: true,
    });
  });

  it('toStructural drops JSON-Schema-only keywords and safe-integer bounds', () => {
    expect(
      toStructural({
        $schema: 'x',
        type: 'object',
        additionalProperties: false,
        properties: { n: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 } },
      }),
    ).toEqual({ type: 'object', properties: { n: { type: 'integer', format: 'int64' } } });
  });
});
