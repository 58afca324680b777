import type { TestProject } from 'vitest/node';
import { startPlatform, type PlatformState } from '../src/platform.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    platform: PlatformState;
  }
}

export default async function setup(project: TestProject) {
  const platform = await startPlatform();
  project.provide('platform', platform.state);
  console.log(`platform ready in ${platform.state.readyMs.total} ms; logs in ${platform.state.logDir}`);
  return async () => {
    await platform.stop({ keepLogs: true });
  };
}
