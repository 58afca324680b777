import type { KubeObject } from '@kdc/shared';

export interface JobOutcome {
  name: string;
  /** Complete or Failed; undefined while it runs. */
  result?: 'Succeeded' | 'Failed';
  reason?: string;
  message?: string;
  completionTime?: string;
}

export type Job = KubeObject & {
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    completionTime?: string;
  };
};

/** A Job's result from its Complete / Failed condition (none while it runs). */
export function jobOutcome(job: Job): JobOutcome {
  const done = job.status?.conditions?.find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  return {
    name: job.metadata!.name!,
    ...(done
      ? {
          result: done.type === 'Complete' ? ('Succeeded' as const) : ('Failed' as const),
          ...(done.reason ? { reason: done.reason } : {}),
          ...(done.message ? { message: done.message } : {}),
        }
      : {}),
    ...(job.status?.completionTime ? { completionTime: job.status.completionTime } : {}),
  };
}
