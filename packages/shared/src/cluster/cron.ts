import { CronExpressionParser } from 'cron-parser';

// What Kubernetes accepts as a CronJob schedule (robfig/cron's standard parser): five fields, or
// one of its descriptors. cron-parser checks ranges, steps and names; it also knows fields and
// characters Kubernetes refuses (seconds, L, W, #), which are turned away here first, so a schedule
// that passes is one the CronJob will take.

const DESCRIPTORS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
const FIELDS = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const;
const FIELD_CHARS = /^[0-9A-Za-z*?,/-]+$/;

export type CronCheck = { ok: true } | { ok: false; error: string };

export function checkCronSchedule(schedule: string): CronCheck {
  const text = schedule.trim();
  if (DESCRIPTORS.has(text)) return { ok: true };
  const fields = text.split(/\s+/);
  if (fields.length !== 5)
    return {
      ok: false,
      error: `has ${fields.length} field${fields.length === 1 ? '' : 's'}, not 5 (minute hour day-of-month month day-of-week)`,
    };
  for (const [i, field] of fields.entries()) {
    if (!FIELD_CHARS.test(field) || /[LW#]/.test(field.replace(/[A-Za-z]{3}/g, '')))
      return { ok: false, error: `the ${FIELDS[i]} field "${field}" uses characters a CronJob does not accept` };
  }
  try {
    CronExpressionParser.parse(text);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: (error as Error).message.replace(/\s+/g, ' ').slice(0, 160) };
  }
}
