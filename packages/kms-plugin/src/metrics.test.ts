import { describe, expect, it } from 'vitest';
import { pluginMetrics } from './metrics.ts';

describe('pluginMetrics', () => {
  it('refreshes health and cache age before the first scrape writes them', async () => {
    const metrics = pluginMetrics();
    metrics.hooks.beforeScrape = () => {
      metrics.healthy.set(1);
      metrics.checkAge.set(2);
    };
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^kms_plugin_status_healthy 1$/m);
    expect(text).toMatch(/^kms_plugin_status_cache_age_seconds 2$/m);
  });
});
