import { randomBytes } from 'node:crypto';
import { rfc3339 } from '../conditions.ts';
import { type KubeClient, type KubeObject } from './kube.ts';
import { at, RESOURCES } from './resources.ts';

export type EventType = 'Normal' | 'Warning';

/**
 * core/v1 Events with client-side aggregation: the same (object, type, reason, message) within
 * ten minutes bumps `count` on the existing Event instead of creating a new one.
 */
export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly instance: string;
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(client: KubeClient, component: string, instance: string) {
    this.client = client;
    this.component = component;
    this.instance = instance;
  }

  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const md = object.metadata ?? {};
    const namespace = md.namespace ?? 'default';
    const key = `${object.kind}/${namespace}/${md.name}/${type}/${reason}/${message}`;
    const now = new Date();
    const timestamp = rfc3339(now);
    const seen = this.recent.get(key);
    try {
      if (seen && now.getTime() - seen.at < 600_000) {
        seen.count += 1;
        seen.at = now.getTime();
        await this.client.patch(at(RESOURCES.event, seen.namespace, seen.name), {
          count: seen.count,
          lastTimestamp: timestamp,
        });
        return;
      }
      const name = `${md.name}.${randomBytes(8).toString('hex')}`;
      await this.client.create(at(RESOURCES.event, namespace), {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: md.name,
          namespace: md.namespace,
          uid: md.uid,
          resourceVersion: md.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.instance,
        firstTimestamp: timestamp,
        lastTimestamp: timestamp,
        count: 1,
      });
      this.recent.set(key, { name, namespace, count: 1, at: now.getTime() });
      if (this.recent.size > 5000) this.recent.delete(this.recent.keys().next().value!);
    } catch {
      // Events are best effort: a lost event must never fail a reconcile.
    }
  }
}
