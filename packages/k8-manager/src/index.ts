export * from './plan.ts';
export { clusterOwner } from './refs.ts';
export * from './status/cluster-status.ts';
export * from './tenant/observe-tenant.ts';
export * from './resources/encryption-config.ts';
export * from './resources/encryption-config-secret.ts';
export * from './resources/kms-key.ts';
export * from './resources/service-account.ts';
export * from './resources/tenant-control-plane.ts';
