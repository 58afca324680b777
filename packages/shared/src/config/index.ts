export * from './flags.ts';
export * from './checks.ts';
