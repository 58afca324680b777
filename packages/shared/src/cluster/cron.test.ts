import { describe, expect, it } from 'vitest';
import { checkCronSchedule } from './cron.ts';

describe('checkCronSchedule (what a CronJob accepts)', () => {
  it.each([
    '0 2 * * *',
    '0 2 * * MON',
    '0 2 * * MON-FRI',
    '*/15 * * * *',
    '0 0 1 JAN *',
    '0 0 * * 7',
    '5,35 1-5/2 * * *',
    '0 0 ? * *',
    '@daily',
    '@hourly',
  ])('accepts %s', (s) => {
    expect(checkCronSchedule(s)).toEqual({ ok: true });
  });
  it.each([
    ['99 99 99 99 99', /range 0-59/],
    ['0 2 * *', /4 fields/],
    ['0 0 2 * * *', /6 fields/],
    ['0 0 0 * *', /range 1-31/],
    ['0 0 L * *', /day of month field "L"/],
    ['0 0 * * 1#2', /day of week field/],
    ['0 0 * * FUNDAY', /./],
    ['@every 1h', /2 fields/],
    ['', /1 field/],
  ])('refuses %s', (s, error) => {
    const result = checkCronSchedule(s);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(error);
  });
});
