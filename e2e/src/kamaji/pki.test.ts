import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { adminKubeconfig, firstServiceIp, servingNames, tcpSecret } from './pki.ts';
import { readTcp, type TenantControlPlane } from './tcp.ts';

const tcp = (networkProfile: NonNullable<TenantControlPlane['spec']['networkProfile']>): TenantControlPlane => ({
  metadata: { name: 'demo', namespace: 'acme' },
  spec: { networkProfile },
});

describe('the tenant control plane PKI', () => {
  it('serves the Service names, certSANs and the address; the first Service IP of the first CIDR', () => {
    const names = servingNames(
      tcp({ certSANs: ['api.example.com', '10.1.2.3'], address: '192.0.2.7', serviceCidrs: ['10.100.0.0/16'] }),
    );
    expect(names.dnsNames).toEqual(
      expect.arrayContaining(['kubernetes.default.svc', 'demo', 'demo.acme.svc', 'api.example.com']),
    );
    expect(names.ips).toEqual(['127.0.0.1', '10.100.0.1', '10.1.2.3', '192.0.2.7']);
    expect(firstServiceIp('10.96.0.0/12')).toBe('10.96.0.1');
    expect(firstServiceIp('fd00::/108')).toBeUndefined();
  });

  it('writes an admin kubeconfig for the TCP endpoint and encodes Secret values', () => {
    const config = parse(
      adminKubeconfig(tcp({}), 'https://127.0.0.1:1', { caPem: 'CA', adminCertPem: 'C', adminKeyPem: 'K' }),
    );
    expect(config['current-context']).toBe('kubernetes-admin@demo');
    expect(config.clusters[0].cluster).toEqual({ server: 'https://127.0.0.1:1', 'certificate-authority-data': 'Q0E=' });
    expect(config.users[0].user).toEqual({ 'client-certificate-data': 'Qw==', 'client-key-data': 'Sw==' });
    const secret = tcpSecret(tcp({}), 'demo-ca', { 'ca.crt': 'x' });
    expect(secret).toMatchObject({
      metadata: { name: 'demo-ca', namespace: 'acme', labels: { 'kamaji.clastix.io/name': 'demo' } },
      data: { 'ca.crt': 'eA==' },
    });
  });

  it('reads a TCP only with its namespace', () => {
    const object = {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'TenantControlPlane',
      spec: { controlPlane: {}, kubernetes: { version: 'v1' } },
    };
    expect(readTcp({ ...object, metadata: { name: 'demo' } })).toBeUndefined();
    expect(readTcp({ ...object, metadata: { name: 'demo', namespace: 'acme' } })?.metadata).toEqual({
      name: 'demo',
      namespace: 'acme',
      uid: undefined,
      deletionTimestamp: undefined,
    });
  });
});
