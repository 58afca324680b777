import { z } from 'zod';
import { objectMetaSchema } from './common.ts';

// Only the TenantControlPlane fields the platform reads or writes. Objects are loose so that a
// read-modify-write round trip keeps every field Kamaji or another controller put there.

const envVarSchema = z.looseObject({ name: z.string(), value: z.string().optional() });
const volumeMountSchema = z.looseObject({
  name: z.string(),
  mountPath: z.string(),
  readOnly: z.boolean().optional(),
  subPath: z.string().optional(),
});

export const containerSchema = z.looseObject({
  name: z.string(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(envVarSchema).optional(),
  restartPolicy: z.string().optional(),
  volumeMounts: z.array(volumeMountSchema).optional(),
});

export const volumeSchema = z.looseObject({ name: z.string() });

export const tcpDeploymentSchema = z.looseObject({
  replicas: z.int().optional(),
  serviceAccountName: z.string().optional(),
  podSecurityContext: z.looseObject({ fsGroup: z.int().optional() }).optional(),
  additionalInitContainers: z.array(containerSchema).optional(),
  additionalContainers: z.array(containerSchema).optional(),
  additionalVolumes: z.array(volumeSchema).optional(),
  additionalVolumeMounts: z
    .looseObject({
      apiServer: z.array(volumeMountSchema).optional(),
      controllerManager: z.array(volumeMountSchema).optional(),
      scheduler: z.array(volumeMountSchema).optional(),
    })
    .optional(),
  extraArgs: z
    .looseObject({
      apiServer: z.array(z.string()).optional(),
      controllerManager: z.array(z.string()).optional(),
      scheduler: z.array(z.string()).optional(),
      kine: z.array(z.string()).optional(),
    })
    .optional(),
  podAdditionalMetadata: z
    .looseObject({
      annotations: z.record(z.string(), z.string()).optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});

export const tenantControlPlaneSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema.loose(),
  spec: z.looseObject({
    dataStore: z.string().optional(),
    controlPlane: z.looseObject({ deployment: tcpDeploymentSchema.optional() }),
    kubernetes: z.looseObject({ version: z.string() }),
  }),
  status: z.looseObject({}).optional(),
});

export type TcpContainer = z.output<typeof containerSchema>;
export type TcpVolume = z.output<typeof volumeSchema>;
export type TcpDeployment = z.output<typeof tcpDeploymentSchema>;
export type TenantControlPlane = z.output<typeof tenantControlPlaneSchema>;
