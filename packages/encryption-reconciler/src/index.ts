export * from './policy.ts';
export * from './kmskey/plan.ts';
export * from './cluster/access.ts';
export * from './cluster/preflight.ts';
export { kmsKeyMetrics } from './kmskey/reconciler.ts';
export { WAITING_FOR_KEY_SAFETY_NET_MS } from './cluster/reconciler.ts';
