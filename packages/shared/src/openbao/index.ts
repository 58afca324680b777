export * from './client.ts';
export * from './errors.ts';
export * from './transit.ts';
export * from './policy.ts';
