export { IMAGES, imageSpec, type ImageSpec } from './catalogue.ts';
export {
  BASE_NAME,
  REGISTRY,
  buildImages,
  imagesCacheDir,
  projectVersion,
  unpackedImagesDir,
  type BuiltImage,
} from './build.ts';
export { bundle, type Bundle } from './bundle.ts';
export { readLayoutImage, type ImageConfig, type LayoutImage } from './layout.ts';
export { sandboxArgs, type SandboxRun } from './sandbox.ts';
export { unpackImage } from './unpack.ts';
export { runTool, type Ran } from './exec.ts';
export { buildCliExecutable, krewManifest, type CliExecutable } from './cli-executable.ts';
