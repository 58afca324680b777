export * from './client.ts';
export * from './errors.ts';
export * from './transit.ts';
export * from './policy.ts';
export * from './failure.ts';
export * from './token-keeper.ts';
export * from './auth-config.ts';
