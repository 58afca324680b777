export * from './proto.ts';
export * from './config.ts';
export * from './keyid.ts';
export * from './validate.ts';
export * from './key-state.ts';
export * from './plugin.ts';
