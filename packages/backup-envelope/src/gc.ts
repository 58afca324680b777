// Garbage collection on demand, for the streaming phases of a backup or restore (the crypto
// worker has its own copy of the minor-GC counter). The S3 client and etcd's gRPC stream leave
// large short-lived buffers behind (socket reads) whose memory lives outside the V8 heap;
// V8 only collects them once that external memory has grown by tens of MiB, which shows up as
// peak RSS. A minor GC every few MiB of such garbage keeps it at that: a scavenge of a young
// generation that holds only small objects costs well under a millisecond.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'minor' | 'major'; flavor?: 'regular' | 'last-resort' }) => void;
let collect: Gc | undefined;

function gcFunction(): Gc {
  if (!collect) {
    // Worker and process flags cannot carry --expose-gc to this code, hence the runtime flag.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Gc;
  }
  return collect;
}

/**
 * Before a long streaming phase: what survived start-up (module loading, the SDK) grew V8's young
 * generation to its maximum (32 MiB of semi-spaces, measured), and V8 keeps it. One full GC that
 * reduces memory gives it back (a few tens of ms, once), and a growth factor of 1 keeps the
 * streaming phase's scavenges (whose survivors are a few in-flight promises) from growing it
 * again: the job is a process of its own, and this V8 flag is process-wide on purpose.
 */
export function shrinkHeap(): void {
  const gc = gcFunction();
  setFlagsFromString('--semi-space-growth-factor=1');
  gc({ type: 'major', flavor: 'last-resort' });
}

/** A counter that runs a minor GC each time `everyBytes` (default 2 MiB) more bytes of garbage were made. */
export function garbageCollector(everyBytes = 2 * 1024 * 1024): (bytes: number) => void {
  const gc = gcFunction();
  let garbage = 0;
  return (bytes: number) => {
    garbage += bytes;
    if (garbage < everyBytes) return;
    garbage = 0;
    gc({ type: 'minor' });
  };
}
