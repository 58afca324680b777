/** Reading a process's Prometheus endpoint (`<metricsUrl>/metrics`) in tests and benches. */
const scrape = async (metricsUrl: string) => (await fetch(`${metricsUrl}/metrics`)).text();

/** The number `pattern`'s one capture group finds in the exposition; 0 when the series is absent. */
export async function metricValue(metricsUrl: string, pattern: RegExp): Promise<number> {
  return Number(pattern.exec(await scrape(metricsUrl))?.[1] ?? 0);
}

/** The sum over every series whose line starts with `prefix` (a name, or a name and some labels). */
export async function metricSum(metricsUrl: string, prefix: string): Promise<number> {
  return (await scrape(metricsUrl))
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
