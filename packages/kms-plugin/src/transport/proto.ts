import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const KMS_V2_PROTO = fileURLToPath(new URL('./proto/kms-v2.proto', import.meta.url));

/** Upstream limits enforced by kube-apiserver on every Encrypt response and etcd read. */
export const KMS_LIMITS = {
  maxCiphertextBytes: 1024,
  maxKeyIdBytes: 1024,
  maxAnnotationsBytes: 32 * 1024,
  /** Messages larger than this are refused before they are parsed. */
  maxGrpcMessageBytes: 64 * 1024,
} as const;

export function loadKmsV2() {
  const definition = loadSync(KMS_V2_PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(definition) as unknown as {
    v2: { KeyManagementService: { service: ServiceDefinition } };
  };
  return { definition, service: pkg.v2.KeyManagementService.service };
}

export function methodPaths(): string[] {
  return Object.values(loadKmsV2().service).map((m) => m.path);
}
