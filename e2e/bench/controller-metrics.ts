// What the benches read from our controllers and OpenBao: the controller's own metrics, and
// OpenBao requests counted from its audit log.
/** OpenBao writes (anything but read and list) or reads in audit lines, by path without its last segment. */
export function openBaoRequests(
  lines: string[],
  kind: 'writes' | 'reads' = 'writes',
): { total: number; byPath: Record<string, number> } {
  const byPath: Record<string, number> = {};
  let total = 0;
  for (const line of lines) {
    if (!line.includes('"type":"request"')) continue;
    const { operation, path } = (JSON.parse(line) as { request: { operation: string; path: string } }).request;
    if ((operation === 'read' || operation === 'list') !== (kind === 'reads')) continue;
    const where = `${operation} ${path.split('/').slice(0, -1).join('/') || path}`;
    byPath[where] = (byPath[where] ?? 0) + 1;
    total++;
  }
  return { total, byPath };
}

/** The controller's own counters: Kubernetes writes by resource, reconciles, CPU seconds, RSS. */
export function metricsOf(text: string) {
  const kubeWrites: Record<string, number> = {};
  const kubeReads: Record<string, number> = {};
  for (const m of text.matchAll(/^kdc_kube_requests_total\{method="(\w+)",resource="([^"]+)",code="\d+"\} (\S+)$/gm)) {
    const counts = m[1] === 'GET' ? kubeReads : kubeWrites;
    counts[m[2]!] = (counts[m[2]!] ?? 0) + Number(m[3]);
  }
  const value = (re: RegExp) => [...text.matchAll(re)].reduce((total, m) => total + Number(m[1]), 0);
  return {
    kubeWrites,
    kubeReads,
    reconciles: value(/^kdc_reconcile_total\{[^}]*\} (\S+)$/gm),
    cpuSeconds: value(/^process_cpu_seconds_total (\S+)$/gm),
    rssBytes: value(/^process_resident_memory_bytes (\S+)$/gm),
    heapUsedBytes: value(/^nodejs_heap_size_used_bytes (\S+)$/gm),
    heapTotalBytes: value(/^nodejs_heap_size_total_bytes (\S+)$/gm),
    externalBytes: value(/^nodejs_external_memory_bytes (\S+)$/gm),
  };
}

export function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) !== 0) out[k] = v - (b[k] ?? 0);
  return out;
}
