export * from './transport/proto.ts';
export * from './config.ts';
export * from './key/keyid.ts';
export * from './service/validate.ts';
export * from './key/key-state.ts';
export * from './plugin.ts';
