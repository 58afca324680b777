// The Job controller of the local runner (kube-controller-manager does not run here): for each
// unfinished batch/v1 Job in the watched namespaces it creates the Pod object from the Job's
// template, runs it on the local node to its end, retries up to backoffLimit, and writes the Job
// status as the Job controller does (startTime, active, succeeded/failed, SuccessCriteriaMet +
// Complete or FailureTarget + Failed). It never looks at what the containers are. CronJob
// scheduling is not played: a run is started like `kubectl create job --from=cronjob/<name>`
// (createJobFromCronJob).
import { randomBytes } from 'node:crypto';
import { at, rfc3339, RESOURCES, type KubeClient, type KubeObject } from '@kdc/shared';
import type { PodTemplate } from '../kubelet/pod-spec.ts';
import { sleep } from '../wait.ts';
import { ownedPod } from './owned-pod.ts';
import { Watched, type ControllerContext } from './watch.ts';

export const JOB = (namespace?: string, name?: string) => at(RESOURCES.job, namespace, name);
export const CRONJOB = (namespace?: string, name?: string) => at(RESOURCES.cronJob, namespace, name);

interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string;
}
export interface JobObject extends KubeObject {
  metadata: KubeObject['metadata'] & { name: string; namespace: string; uid?: string; labels?: Record<string, string> };
  spec: {
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    template: PodTemplate;
  };
  status?: {
    conditions?: JobCondition[];
    startTime?: string;
    completionTime?: string;
    active?: number;
    succeeded?: number;
    failed?: number;
  };
}

/** Job status times have second precision; the apiserver refuses a changed startTime. */
const seconds = () => rfc3339(new Date());
const finished = (job: JobObject) =>
  job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') ?? false;

/** What `kubectl create job --from=cronjob/<name>` does: a Job from the CronJob's jobTemplate. */
export async function createJobFromCronJob(kube: KubeClient, namespace: string, cronJob: string): Promise<JobObject> {
  const cj = await kube.get<
    KubeObject & {
      spec: {
        jobTemplate: {
          metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
          spec: JobObject['spec'];
        };
      };
    }
  >(CRONJOB(namespace, cronJob));
  const template = cj.spec.jobTemplate;
  return kube.create<JobObject>(JOB(namespace), {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `${cronJob.slice(0, 40)}-manual-${randomBytes(3).toString('hex')}`,
      namespace,
      labels: template.metadata?.labels ?? {},
      annotations: { ...(template.metadata?.annotations ?? {}), 'cronjob.kubernetes.io/instantiate': 'manual' },
      ownerReferences: [
        { apiVersion: 'batch/v1', kind: 'CronJob', name: cronJob, uid: cj.metadata?.uid ?? '', controller: true },
      ],
    },
    spec: template.spec,
  });
}

export class JobController {
  private readonly context: ControllerContext;
  private readonly watched: Watched<JobObject>;
  /** Each Job being run, until its run ends (a failed run is forgotten: the next event tries again). */
  private readonly running = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(context: ControllerContext) {
    this.context = context;
    this.watched = new Watched<JobObject>(context, {
      name: 'job',
      resource: RESOURCES.job,
      reconcile: async (key) => this.consider(key),
    });
  }

  start(): Promise<void> {
    return this.watched.start();
  }

  private log(message: string, fields: Record<string, unknown>): void {
    this.context.logger.info(fields, message);
  }

  private consider(key: string): void {
    const job = this.watched.get(key);
    if (!job || this.stopping || this.running.has(key) || finished(job) || job.metadata.deletionTimestamp) return;
    this.running.set(
      key,
      this.run(job).catch((error: unknown) => {
        this.log('job run failed', { job: key, error: String((error as Error)?.message ?? error) });
        this.running.delete(key);
      }),
    );
  }

  private async run(job: JobObject): Promise<void> {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const backoffLimit = job.spec.backoffLimit ?? 6;
    const startTime = job.status?.startTime ?? seconds();
    let failed = job.status?.failed ?? 0;
    const deadline = job.spec.activeDeadlineSeconds
      ? Date.parse(startTime) + job.spec.activeDeadlineSeconds * 1000
      : Infinity;
    while (!this.stopping) {
      await this.patchStatus(job, { startTime, active: 1, ready: 0, failed, succeeded: 0 });
      const pod = await this.context.node.createPod(this.podFor(job));
      this.log('job pod started', { job: key, pod: pod.metadata.name, attempt: failed + 1 });
      const outcome = await this.context.node.runToEnd(pod, () => this.stopping || Date.now() >= deadline, {
        group: 'jobs',
      });
      if (this.stopping) return;
      if (outcome === 'Succeeded') {
        const now = seconds();
        const met = { status: 'True', reason: 'CompletionsReached', lastProbeTime: now, lastTransitionTime: now };
        const message = 'Reached expected number of succeeded pods';
        await this.patchStatus(job, {
          startTime,
          completionTime: now,
          active: 0,
          ready: 0,
          failed,
          succeeded: 1,
          terminating: 0,
          conditions: [
            { type: 'SuccessCriteriaMet', ...met, message },
            { type: 'Complete', ...met, message },
          ],
        });
        this.log('job complete', { job: key });
        return;
      }
      failed++;
      const overDeadline = Date.now() >= deadline;
      if (failed > backoffLimit || overDeadline) {
        const now = seconds();
        const [reason, message] = overDeadline
          ? ['DeadlineExceeded', 'Job was active longer than specified deadline']
          : ['BackoffLimitExceeded', 'Job has reached the specified backoff limit'];
        await this.patchStatus(job, {
          startTime,
          active: 0,
          ready: 0,
          failed,
          succeeded: 0,
          terminating: 0,
          conditions: [
            { type: 'FailureTarget', status: 'True', reason, message, lastProbeTime: now, lastTransitionTime: now },
            { type: 'Failed', status: 'True', reason, message, lastProbeTime: now, lastTransitionTime: now },
          ],
        });
        this.log('job failed', { job: key, reason });
        return;
      }
      await sleep(1000);
    }
  }

  private podFor(job: JobObject) {
    const uid = job.metadata.uid ?? '';
    return ownedPod(RESOURCES.job, job, {
      name: `${job.metadata.name.slice(0, 50)}-${randomBytes(3).toString('hex')}`,
      labels: {
        'batch.kubernetes.io/job-name': job.metadata.name,
        'job-name': job.metadata.name,
        'batch.kubernetes.io/controller-uid': uid,
        'controller-uid': uid,
      },
    });
  }

  private async patchStatus(job: JobObject, status: Record<string, unknown>): Promise<void> {
    const ref = JOB(job.metadata.namespace, job.metadata.name);
    await this.context.kube.patch({ ...ref, subresource: 'status' }, { status }, 'merge');
  }

  /** Runs in progress end (their pods stop with a last phase Failed) before it resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.watched.stop();
    await Promise.all(this.running.values());
  }
}
