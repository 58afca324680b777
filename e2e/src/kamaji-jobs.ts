// The Job half of the local runner: what the Job controller and a kubelet would do for a batch/v1
// Job (kube-controller-manager and kubelet cannot run here). For each Job in the watched
// namespaces it creates the Pod object from the Job's template, runs that Pod spec generically
// (kamaji-pod.ts), retries up to backoffLimit, and writes the Job status the way the Job
// controller does (startTime, active, succeeded/failed, SuccessCriteriaMet+Complete or
// FailureTarget+Failed). It never looks at what the containers are. CronJob scheduling is not
// played: a run is started like `kubectl create job --from=cronjob/<name>` (createJobFromCronJob).
import { randomBytes } from 'node:crypto';
import { rfc3339, type Informer, type KubeClient, type KubeObject, type ResourceRef, at, RESOURCES } from '@kdc/shared';
import type { PodObject, PodRuntime } from './kamaji-pod.ts';
import { runPodToEnd, watchAll, type WorkloadRunnerDeps } from './kamaji-workloads.ts';

export const JOB = (namespace?: string, name?: string): ResourceRef => ({ ...RESOURCES.job, namespace, name });
export const CRONJOB = (namespace?: string, name?: string): ResourceRef => ({ ...RESOURCES.cronJob, namespace, name });

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
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: PodObject['spec'];
    };
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

export type JobRunnerDeps = WorkloadRunnerDeps;

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
        { apiVersion: 'batch/v1', kind: 'CronJob', name: cronJob, uid: cj.metadata!.uid!, controller: true },
      ],
    },
    spec: template.spec,
  } as JobObject);
}

export class LocalJobRunner {
  private readonly deps: JobRunnerDeps;
  private informers: Informer<JobObject>[] = [];
  private readonly running = new Map<string, { runtime?: PodRuntime; done: Promise<void> }>();
  private stopping = false;

  constructor(deps: JobRunnerDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.informers = await watchAll<JobObject>(this.deps.kube, JOB, this.deps.namespaces, (job) => this.consider(job));
  }

  private consider(job: JobObject): void {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    if (this.stopping || this.running.has(key) || finished(job) || job.metadata.deletionTimestamp) return;
    const entry: { runtime?: PodRuntime; done: Promise<void> } = { done: Promise.resolve() };
    this.running.set(key, entry);
    entry.done = this.run(job, entry).catch((error: unknown) => {
      this.deps.log('job run failed', { job: key, error: String((error as Error)?.message ?? error) });
      // The next event for this Job (or a relist) tries again, as the Job controller would.
      this.running.delete(key);
    });
  }

  private async run(job: JobObject, entry: { runtime?: PodRuntime }): Promise<void> {
    const ns = job.metadata.namespace;
    const key = `${ns}/${job.metadata.name}`;
    const backoffLimit = job.spec.backoffLimit ?? 6;
    const startTime = job.status?.startTime ?? seconds();
    let failed = job.status?.failed ?? 0;
    const deadline = job.spec.activeDeadlineSeconds
      ? Date.parse(startTime) + job.spec.activeDeadlineSeconds * 1000
      : Infinity;
    while (!this.stopping) {
      await this.patchStatus(job, { startTime, active: 1, ready: 0, failed, succeeded: 0 });
      const pod = await this.createPod(job);
      this.deps.log('job pod started', { job: key, pod: pod.metadata.name, attempt: failed + 1 });
      const outcome = await runPodToEnd(this.deps, pod, entry, () => this.stopping || Date.now() >= deadline);
      if (this.stopping) return;
      if (outcome === 'Succeeded') {
        const now = seconds();
        await this.patchStatus(job, {
          startTime,
          completionTime: now,
          active: 0,
          ready: 0,
          failed,
          succeeded: 1,
          terminating: 0,
          conditions: [
            {
              type: 'SuccessCriteriaMet',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'Reached expected number of succeeded pods',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
            {
              type: 'Complete',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'Reached expected number of succeeded pods',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
          ],
        });
        this.deps.log('job complete', { job: key });
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
        this.deps.log('job failed', { job: key, reason });
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private async createPod(job: JobObject): Promise<PodObject> {
    const ns = job.metadata.namespace;
    const template = job.spec.template;
    const uid = job.metadata.uid!;
    const name = `${job.metadata.name.slice(0, 50)}-${randomBytes(3).toString('hex')}`;
    await this.deps.prepareNamespace(ns, template.spec.serviceAccountName);
    return this.deps.kube.create<PodObject>(at(RESOURCES.pod, ns), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: ns,
        labels: {
          ...(template.metadata?.labels ?? {}),
          'batch.kubernetes.io/job-name': job.metadata.name,
          'job-name': job.metadata.name,
          'batch.kubernetes.io/controller-uid': uid,
          'controller-uid': uid,
        },
        annotations: template.metadata?.annotations ?? {},
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name,
            uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...template.spec, nodeName: this.deps.nodeName },
    } as PodObject);
  }

  private async patchStatus(job: JobObject, status: Record<string, unknown>): Promise<void> {
    await this.deps.kube.patch(
      { ...JOB(job.metadata.namespace, job.metadata.name), subresource: 'status' },
      { status },
      'merge',
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(
      [...this.running.values()].map(async (e) => {
        await e.runtime?.stop(2000);
        await e.done;
      }),
    );
  }
}
