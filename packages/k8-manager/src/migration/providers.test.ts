import { describe, expect, it } from 'vitest';
import { desiredProviders, disableComplete, nextProviderState } from './providers.ts';

type Case = [string, Parameters<typeof desiredProviders>[0], Partial<ReturnType<typeof desiredProviders>>];
const none = { retained: [], shared: [] };

describe('desiredProviders', () => {
  it.each<Case>([
    [
      'a new cluster encrypts its resources',
      { resources: ['secrets'], disableRequested: false, attached: false, state: undefined },
      { encrypt: ['secrets'], decrypt: [], ...none },
    ],
    [
      'a new cluster with both gets a provider name per resource',
      { resources: ['secrets', 'configmaps'], disableRequested: false, attached: false, state: undefined },
      { encrypt: ['configmaps', 'secrets'], decrypt: [], ...none },
    ],
    [
      'an attached cluster from before these fields encrypted both under one name',
      { resources: ['secrets', 'configmaps'], disableRequested: false, attached: true, state: undefined },
      { encrypt: ['configmaps', 'secrets'], decrypt: [], retained: [], shared: ['configmaps', 'secrets'] },
    ],
    [
      'configmaps added: encrypted under their own name',
      {
        resources: ['secrets', 'configmaps'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['secrets'] },
      },
      { encrypt: ['configmaps', 'secrets'], decrypt: [], ...none },
    ],
    [
      'configmaps dropped: decrypted, not forgotten',
      {
        resources: ['secrets'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['configmaps', 'secrets'] },
      },
      { encrypt: ['secrets'], decrypt: ['configmaps'], ...none },
    ],
    [
      'configmaps still decrypting on the next reconcile',
      {
        resources: ['secrets'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['secrets'], decryptingResources: ['configmaps'] },
      },
      { encrypt: ['secrets'], decrypt: ['configmaps'], ...none },
    ],
    [
      'configmaps proven plaintext: gone from the config',
      {
        resources: ['secrets'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['secrets'], decryptingResources: [] },
      },
      { encrypt: ['secrets'], decrypt: [], ...none },
    ],
    [
      'configmaps added back while decrypting: encrypted again',
      {
        resources: ['secrets', 'configmaps'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['secrets'], decryptingResources: ['configmaps'] },
      },
      { encrypt: ['configmaps', 'secrets'], decrypt: [], ...none },
    ],
    [
      'configmaps dropped from a shared name: kept encrypted (retained)',
      {
        resources: ['secrets'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: ['configmaps', 'secrets'], sharedProviderResources: ['configmaps', 'secrets'] },
      },
      { encrypt: ['configmaps', 'secrets'], decrypt: [], retained: ['configmaps'], shared: ['configmaps', 'secrets'] },
    ],
    [
      'disable: everything encrypted is decrypted',
      {
        resources: ['secrets', 'configmaps'],
        disableRequested: true,
        attached: true,
        state: { encryptedResources: ['configmaps', 'secrets'] },
      },
      { encrypt: [], decrypt: ['configmaps', 'secrets'], ...none },
    ],
    [
      'disable of a shared name decrypts them together',
      {
        resources: ['secrets'],
        disableRequested: true,
        attached: true,
        state: { encryptedResources: ['configmaps', 'secrets'], sharedProviderResources: ['configmaps', 'secrets'] },
      },
      { encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [], shared: ['configmaps', 'secrets'] },
    ],
    [
      'disable of a cluster from before these fields',
      { resources: ['secrets'], disableRequested: true, attached: true, state: undefined },
      { encrypt: [], decrypt: ['secrets'], ...none },
    ],
    [
      'disable proven: nothing left',
      {
        resources: ['secrets'],
        disableRequested: true,
        attached: true,
        state: { encryptedResources: [], decryptingResources: [] },
      },
      { encrypt: [], decrypt: [], ...none },
    ],
    [
      'disable of a cluster never attached: nothing to decrypt',
      { resources: ['secrets'], disableRequested: true, attached: false, state: undefined },
      { encrypt: [], decrypt: [], ...none },
    ],
    [
      'disable cancelled mid-way: encrypted again',
      {
        resources: ['secrets'],
        disableRequested: false,
        attached: true,
        state: { encryptedResources: [], decryptingResources: ['secrets'] },
      },
      { encrypt: ['secrets'], decrypt: [], ...none },
    ],
  ])('%s', (_name, input, want) => expect(desiredProviders(input)).toEqual(want));
});

describe('the decrypt set only shrinks by proof', () => {
  it('keeps what was not proven, drops what was; a shared name is remembered while any of its resources is in KMS', () => {
    expect(nextProviderState({ encrypt: ['secrets'], decrypt: ['configmaps'], retained: [], shared: [] }, [])).toEqual({
      encryptedResources: ['secrets'],
      decryptingResources: ['configmaps'],
      sharedProviderResources: undefined,
    });
    expect(
      nextProviderState({ encrypt: ['secrets'], decrypt: ['configmaps'], retained: [], shared: [] }, ['configmaps']),
    ).toEqual({ encryptedResources: ['secrets'], decryptingResources: [], sharedProviderResources: undefined });
    expect(
      nextProviderState(
        { encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [], shared: ['configmaps', 'secrets'] },
        [],
      ),
    ).toMatchObject({ sharedProviderResources: ['configmaps', 'secrets'] });
    expect(
      nextProviderState(
        { encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [], shared: ['configmaps', 'secrets'] },
        ['configmaps', 'secrets'],
      ),
    ).toMatchObject({ sharedProviderResources: undefined });
  });
  it('the disable is complete only with nothing encrypted and nothing decrypting', () => {
    expect(disableComplete({ encrypt: [], decrypt: [] }, true)).toBe(true);
    expect(disableComplete({ encrypt: [], decrypt: ['secrets'] }, true)).toBe(false);
    expect(disableComplete({ encrypt: [], decrypt: [] }, false)).toBe(false);
  });
});
