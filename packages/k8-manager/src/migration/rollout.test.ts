import { describe, expect, it } from 'vitest';
import { judgeRollout, type ReplicaView } from './rollout.ts';

const K = 'kdc1.v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const replica = (pod: string, r: Partial<ReplicaView> = {}): ReplicaView => ({
  pod,
  configHash: 'h2',
  sidecarReady: true,
  keyId: K,
  ...r,
});

describe('judgeRollout', () => {
  it('every replica on the current config, healthy, one key_id: ready with that key_id', () => {
    expect(
      judgeRollout({ desiredHash: 'h2', replicas: [replica('a'), replica('b')], kmsProvidersHealthy: true }),
    ).toEqual({ ready: true, keyIds: [K] });
  });
  it.each<[string, ReplicaView[], boolean, RegExp]>([
    ['no pod', [], true, /no control-plane pod/],
    [
      'one replica still on the old config',
      [replica('a'), replica('b', { configHash: 'h1' })],
      true,
      /1 of 2 .*waiting for b/,
    ],
    ['a replica without the annotation', [replica('a', { configHash: undefined })], true, /0 of 1/],
    ['a sidecar not ready', [replica('a', { sidecarReady: false })], true, /not ready on a/],
    ['the apiserver reports its provider unhealthy', [replica('a')], false, /KMS provider healthy/],
    [
      'a plugin that did not answer',
      [replica('a'), replica('b', { keyId: undefined })],
      true,
      /on b has not published/,
    ],
    [
      'two key_ids during a rotation',
      [replica('a'), replica('b', { keyId: 'kdc1.v3.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' })],
      true,
      /2 different key_ids/,
    ],
  ])('%s: not ready', (_name, replicas, healthy, message) => {
    expect(judgeRollout({ desiredHash: 'h2', replicas, kmsProvidersHealthy: healthy })).toEqual({
      ready: false,
      message: expect.stringMatching(message),
    });
  });
});
