import { z } from 'zod';
import { stringify } from 'yaml';
import { kdcClusterSpecSchema, kdcClusterStatusSchema } from '../api/kdccluster.ts';
import { kmsKeySpecSchema, kmsKeyStatusSchema } from '../api/kmskey.ts';
import { API_VERSION, KDC_CLUSTER, KDC_GROUP, KMS_KEY, SECURITY_GROUP } from '../names.ts';

// CRDs are generated from the zod schemas so that types, runtime validation and the apiserver's
// schema cannot drift. The JSON Schema zod emits is turned into a Kubernetes structural schema.

type JsonSchema = Record<string, unknown>;

const SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

/** Rewrites a JSON Schema node into what apiextensions.k8s.io/v1 accepts as structural. */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (key === '$schema' || key === 'id') continue;
    if (key === 'additionalProperties' && value === false) continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(value as number) === SAFE_INTEGER) continue;
    if (key === 'pattern' && (node as JsonSchema).format === 'date-time') continue;
    if (key === 'default' || key === 'enum' || key === 'x-kubernetes-list-map-keys') {
      out[key] = value;
      continue;
    }
    out[key] = toStructural(value);
  }
  if (out.type === 'integer' && out.format === undefined) out.format = 'int64';
  return out;
}

function schemaOf(type: z.ZodType): JsonSchema {
  return toStructural(
    z.toJSONSchema(type, { io: 'input', target: 'openapi-3.0', unrepresentable: 'throw' }),
  ) as JsonSchema;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean';
  jsonPath: string;
  priority?: number;
}

interface CrdInput {
  group: string;
  names: { kind: string; plural: string; singular: string; shortNames: readonly string[] };
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
  specRequired: boolean;
}

function buildCrd(input: CrdInput) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${input.names.plural}.${input.group}` },
    spec: {
      group: input.group,
      names: {
        kind: input.names.kind,
        listKind: `${input.names.kind}List`,
        plural: input.names.plural,
        singular: input.names.singular,
        shortNames: [...input.names.shortNames],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: input.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: schemaOf(input.spec),
                status: schemaOf(input.status),
              },
              ...(input.specRequired ? { required: ['spec'] } : {}),
            },
          },
        },
      ],
    },
  };
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export function kdcClusterCrd() {
  return buildCrd({
    group: KDC_GROUP,
    names: KDC_CLUSTER,
    spec: kdcClusterSpecSchema,
    status: kdcClusterStatusSchema,
    specRequired: true,
    columns: [
      { name: 'Version', type: 'string', jsonPath: '.spec.version' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Encryption', type: 'string', jsonPath: '.status.encryption.resolvedKeyRef' },
      { name: 'KEK', type: 'integer', jsonPath: '.status.encryption.currentKeyVersion' },
      { name: 'Plugin-Ready', type: 'boolean', jsonPath: '.status.encryption.kmsPluginReady' },
      { name: 'Latest-Backup', type: 'date', jsonPath: '.status.latestBackupTime', priority: 1 },
      AGE,
    ],
  });
}

export function kmsKeyCrd() {
  return buildCrd({
    group: SECURITY_GROUP,
    names: KMS_KEY,
    spec: kmsKeySpecSchema,
    status: kmsKeyStatusSchema,
    specRequired: false,
    columns: [
      { name: 'Purpose', type: 'string', jsonPath: '.spec.purpose' },
      { name: 'Algorithm', type: 'string', jsonPath: '.spec.algorithm' },
      { name: 'Version', type: 'integer', jsonPath: '.status.currentVersion' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', priority: 1 },
      AGE,
    ],
  });
}

export const GENERATED_HEADER = '# Generated from packages/shared/src/api by `npx nx run shared:crds`. Do not edit.\n';

/** File name -> YAML text of every CRD the chart ships. */
export function renderCrds(): Record<string, string> {
  const crds = [kdcClusterCrd(), kmsKeyCrd()];
  return Object.fromEntries(
    crds.map((crd) => [`${crd.metadata.name}.yaml`, GENERATED_HEADER + stringify(crd, { lineWidth: 0 })]),
  );
}
