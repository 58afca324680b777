import { describe, expect, it } from 'vitest';
import { desiredProviders, disableComplete, nextProviderState } from './providers.ts';

describe('desiredProviders', () => {
  it.each<[string, Parameters<typeof desiredProviders>[0], ReturnType<typeof desiredProviders>]>([
    ['a new cluster encrypts its resources', { resources: ['secrets'], disableRequested: false, attached: false, state: undefined }, { encrypt: ['secrets'], decrypt: [], retained: [] }],
    ['a cluster from before these fields encrypted its spec resources', { resources: ['secrets', 'configmaps'], disableRequested: false, attached: true, state: undefined }, { encrypt: ['configmaps', 'secrets'], decrypt: [], retained: [] }],
    ['configmaps added: encrypted', { resources: ['secrets', 'configmaps'], disableRequested: false, attached: true, state: { encryptedResources: ['secrets'] } }, { encrypt: ['configmaps', 'secrets'], decrypt: [], retained: [] }],
    ['configmaps dropped: kept encrypted (one provider cannot decrypt them alone), and said so', { resources: ['secrets'], disableRequested: false, attached: true, state: { encryptedResources: ['configmaps', 'secrets'] } }, { encrypt: ['configmaps', 'secrets'], decrypt: [], retained: ['configmaps'] }],
    ['disable: everything encrypted is decrypted', { resources: ['secrets', 'configmaps'], disableRequested: true, attached: true, state: { encryptedResources: ['configmaps', 'secrets'] } }, { encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [] }],
    ['disable with a retained resource decrypts it too', { resources: ['secrets'], disableRequested: true, attached: true, state: { encryptedResources: ['configmaps', 'secrets'] } }, { encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [] }],
    ['disable of a cluster from before these fields', { resources: ['secrets'], disableRequested: true, attached: true, state: undefined }, { encrypt: [], decrypt: ['secrets'], retained: [] }],
    ['disable still decrypting on the next reconcile', { resources: ['secrets'], disableRequested: true, attached: true, state: { encryptedResources: [], decryptingResources: ['secrets'] } }, { encrypt: [], decrypt: ['secrets'], retained: [] }],
    ['disable proven: nothing left', { resources: ['secrets'], disableRequested: true, attached: true, state: { encryptedResources: [], decryptingResources: [] } }, { encrypt: [], decrypt: [], retained: [] }],
    ['disable of a cluster never attached: nothing to decrypt', { resources: ['secrets'], disableRequested: true, attached: false, state: undefined }, { encrypt: [], decrypt: [], retained: [] }],
    ['disable cancelled mid-way: encrypted again', { resources: ['secrets'], disableRequested: false, attached: true, state: { encryptedResources: [], decryptingResources: ['secrets'] } }, { encrypt: ['secrets'], decrypt: [], retained: [] }],
  ])('%s', (_name, input, want) => expect(desiredProviders(input)).toEqual(want));
});

describe('the decrypt set only shrinks by proof', () => {
  it('keeps what was not proven, drops what was', () => {
    expect(nextProviderState({ encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [] }, [])).toEqual({ encryptedResources: [], decryptingResources: ['configmaps', 'secrets'] });
    expect(nextProviderState({ encrypt: [], decrypt: ['configmaps', 'secrets'], retained: [] }, ['configmaps', 'secrets'])).toEqual({ encryptedResources: [], decryptingResources: [] });
  });
  it('the disable is complete only with nothing encrypted and nothing decrypting', () => {
    expect(disableComplete({ encrypt: [], decrypt: [] }, true)).toBe(true);
    expect(disableComplete({ encrypt: [], decrypt: ['secrets'] }, true)).toBe(false);
    expect(disableComplete({ encrypt: [], decrypt: [] }, false)).toBe(false);
  });
});
