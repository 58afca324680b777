export * from './kube.ts';
export * from './workqueue.ts';
export * from './informer.ts';
export * from './controller.ts';
export * from './leader.ts';
export * from './events.ts';
export * from './status.ts';
export * from './shutdown.ts';
