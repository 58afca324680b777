import { z } from 'zod';
import { conditionSchema, dateTime, objectMetaSchema } from './common.ts';

export const KMSKEY_PURPOSES = ['application', 'backup', 'etcd'] as const;
export const KMSKEY_ALGORITHMS = ['aes256-gcm96', 'chacha20-poly1305'] as const;
export const KMSKEY_DELETION_POLICIES = ['retain', 'schedule'] as const;

export const kmsKeySpecSchema = z.object({
  purpose: z.enum(KMSKEY_PURPOSES).default('application'),
  algorithm: z.enum(KMSKEY_ALGORITHMS).default('aes256-gcm96'),
  deletionPolicy: z
    .enum(KMSKEY_DELETION_POLICIES)
    .default('retain')
    .describe('schedule = 30-day cancellable countdown'),
  exportable: z.boolean().default(false).describe('Always false: key material never leaves OpenBao'),
  rotation: z
    .object({
      enabled: z.boolean().default(false),
      interval: z.string().optional().describe('e.g. 90d, 2160h, 45s, 1h30m'),
    })
    .optional(),
});

export const kmsKeyStatusSchema = z.object({
  conditions: z
    .array(conditionSchema)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  observedGeneration: z.int().optional(),
  currentVersion: z.int().optional(),
  keyId: z.string().optional().describe('<org>/transit/keys/<name>'),
  lastRotatedTime: dateTime().optional(),
  nextRotationTime: dateTime().optional(),
  minDecryptionVersion: z.int().optional(),
  scheduledDeletion: dateTime().optional(),
});

export const kmsKeySchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema,
  spec: kmsKeySpecSchema,
  status: kmsKeyStatusSchema.optional(),
});

export type KmsKeySpecInput = z.input<typeof kmsKeySpecSchema>;
export type KmsKeySpec = z.output<typeof kmsKeySpecSchema>;
export type KmsKeyStatus = z.output<typeof kmsKeyStatusSchema>;
export type KmsKey = z.output<typeof kmsKeySchema>;

export const KMSKEY_CONDITIONS = {
  ready: 'Ready',
  rotationScheduled: 'RotationScheduled',
  openBaoMounted: 'OpenBaoMounted',
} as const;
