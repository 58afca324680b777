// The control-plane Pod Kamaji's Deployment makes of a TenantControlPlane (minus
// controller-manager and scheduler): the kube-apiserver container with Kamaji's flags and mounts,
// and every additional init container, container, volume, mount and extra argument merged the
// way Kamaji merges them. Pure; the node binds and runs the result.
import type { ContainerSpec, PodObject, ProbeSpec } from '../kubelet/pod-spec.ts';
import {
  NAME_LABEL,
  PKI_SECRETS,
  apiServerImage,
  apiServerPort,
  etcdPrefix,
  pkiPaths,
  type EtcdTarget,
  type ProbeKind,
  type TenantControlPlane,
} from './tcp.ts';

/**
 * Kamaji's mergeAPIServerArgs: Kamaji-managed flags always win (user duplicates dropped), safe
 * defaults apply only where the user did not set the flag, user extraArgs follow verbatim.
 */
export function mergeApiServerArgs(
  userExtras: string[],
  safeDefaults: Record<string, string>,
  managed: Record<string, string>,
): string[] {
  const flagOf = (arg: string) => arg.split('=')[0]!;
  const extras = userExtras.filter((a) => !(flagOf(a) in managed));
  const userFlags = new Set(extras.map(flagOf));
  const format = (flag: string, value: string) => (value === '' ? flag : `${flag}=${value}`);
  const owned = [
    ...Object.entries(safeDefaults)
      .filter(([flag]) => !userFlags.has(flag))
      .map(([f, v]) => format(f, v)),
    ...Object.entries(managed).map(([f, v]) => format(f, v)),
  ].sort();
  return [...owned, ...extras];
}

export function buildPod(tcp: TenantControlPlane, hash: string, etcd: EtcdTarget): PodObject {
  const d = tcp.spec.controlPlane?.deployment ?? {};
  const np = tcp.spec.networkProfile ?? {};
  const name = tcp.metadata.name;
  const port = apiServerPort(tcp);
  const pki = '/etc/kubernetes/pki';
  const serviceCidrs = np.serviceCidrs?.length ? np.serviceCidrs : [np.serviceCidr ?? '10.96.0.0/16'];
  const safeDefaults: Record<string, string> = {
    '--allow-privileged': 'true',
    '--authorization-mode': 'Node,RBAC',
    '--enable-bootstrap-token-auth': 'true',
    '--requestheader-extra-headers-prefix': 'X-Remote-Extra-',
    '--requestheader-group-headers': 'X-Remote-Group',
    '--requestheader-username-headers': 'X-Remote-User',
    '--service-account-issuer': 'https://kubernetes.default.svc.cluster.local',
    // Local additions (not Kamaji's): loopback endpoints are refused by the endpoints API, and
    // priority-and-fairness costs start-up time on a small machine.
    '--endpoint-reconciler-type': 'none',
    '--enable-priority-and-fairness': 'false',
  };
  const managed: Record<string, string> = {
    '--advertise-address': np.advertiseAddress ?? np.address ?? '127.0.0.1',
    '--client-ca-file': `${pki}/ca.crt`,
    '--enable-admission-plugins': (tcp.spec.kubernetes?.admissionControllers ?? []).join(','),
    '--service-cluster-ip-range': serviceCidrs.join(','),
    '--kubelet-client-certificate': `${pki}/apiserver-kubelet-client.crt`,
    '--kubelet-client-key': `${pki}/apiserver-kubelet-client.key`,
    '--kubelet-preferred-address-types': (
      tcp.spec.kubernetes?.kubelet?.preferredAddressTypes ?? ['InternalIP', 'ExternalIP', 'Hostname']
    ).join(','),
    '--proxy-client-cert-file': `${pki}/front-proxy-client.crt`,
    '--proxy-client-key-file': `${pki}/front-proxy-client.key`,
    '--requestheader-allowed-names': 'front-proxy-client',
    '--requestheader-client-ca-file': `${pki}/front-proxy-ca.crt`,
    '--secure-port': String(port),
    '--service-account-key-file': `${pki}/sa.pub`,
    '--service-account-signing-key-file': `${pki}/sa.key`,
    '--tls-cert-file': `${pki}/apiserver.crt`,
    '--tls-private-key-file': `${pki}/apiserver.key`,
    // The platform's etcd (plain HTTP on loopback) unless the TCP names a DataStore.
    '--etcd-servers': etcd.servers,
    ...(etcd.certsSecret
      ? {
          '--etcd-cafile': `${pki}/etcd/ca.crt`,
          '--etcd-certfile': `${pki}/etcd/server.crt`,
          '--etcd-keyfile': `${pki}/etcd/server.key`,
        }
      : {}),
    '--etcd-prefix': etcdPrefix(tcp),
    '--etcd-compaction-interval': '0',
  };
  const probes = d.probes ?? {};
  const probe = (path: string, kind: ProbeKind): ProbeSpec => ({
    httpGet: { path, port, scheme: 'HTTPS' },
    initialDelaySeconds: 0,
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
    ...(probes[kind] ?? {}),
    ...(probes.apiServer?.[kind] ?? {}),
  });
  const secrets = PKI_SECRETS(name);
  const secretProjection = (secretName: string, [cert, key]: readonly [string, string]) => ({
    secret: {
      name: secretName,
      items: [
        { key: cert, path: cert },
        { key, path: key },
      ],
    },
  });
  const apiServer: ContainerSpec & Record<string, unknown> = {
    name: 'kube-apiserver',
    image: apiServerImage(tcp),
    imagePullPolicy: 'Always',
    command: ['kube-apiserver'],
    args: mergeApiServerArgs(d.extraArgs?.apiServer ?? [], safeDefaults, managed),
    livenessProbe: probe('/livez', 'liveness'),
    readinessProbe: probe('/readyz', 'readiness'),
    startupProbe: probe('/livez', 'startup'),
    volumeMounts: [
      ...(d.additionalVolumeMounts?.apiServer ?? []),
      { name: 'etc-kubernetes-pki', readOnly: true, mountPath: pki },
      { name: 'etc-ca-certificates', readOnly: true, mountPath: '/etc/ca-certificates' },
      { name: 'usr-share-ca-certificates', readOnly: true, mountPath: '/usr/share/ca-certificates' },
      { name: 'usr-local-share-ca-certificates', readOnly: true, mountPath: '/usr/local/share/ca-certificates' },
    ],
    ...(d.containerSecurityContexts?.apiServer ? { securityContext: d.containerSecurityContexts.apiServer } : {}),
    ...(d.resources?.apiServer ? { resources: d.resources.apiServer } : {}),
  };
  const caSecret = { secretName: secrets.ca, defaultMode: 0o644 };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-${hash}-local`,
      namespace: tcp.metadata.namespace,
      labels: {
        ...(d.podAdditionalMetadata?.labels ?? {}),
        [NAME_LABEL]: name,
        'kamaji.clastix.io/component': 'deployment',
        'pod-template-hash': hash,
      },
      annotations: { ...(d.podAdditionalMetadata?.annotations ?? {}) },
      ...(tcp.metadata.uid
        ? {
            ownerReferences: [
              {
                apiVersion: 'kamaji.clastix.io/v1alpha1',
                kind: 'TenantControlPlane',
                name,
                uid: tcp.metadata.uid,
                controller: false,
              },
            ],
          }
        : {}),
    },
    spec: {
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      ...(d.serviceAccountName ? { serviceAccountName: d.serviceAccountName } : {}),
      ...(d.automountServiceAccountToken !== undefined
        ? { automountServiceAccountToken: d.automountServiceAccountToken }
        : {}),
      ...(d.podSecurityContext ? { securityContext: d.podSecurityContext } : {}),
      initContainers: d.additionalInitContainers ?? [],
      containers: [...(d.additionalContainers ?? []), apiServer],
      volumes: [
        ...(d.additionalVolumes ?? []),
        {
          name: 'etc-kubernetes-pki',
          projected: {
            defaultMode: 0o644,
            sources: [
              secretProjection(secrets.apiServer, pkiPaths.apiServer),
              secretProjection(secrets.ca, pkiPaths.ca),
              secretProjection(secrets.apiServerKubeletClient, pkiPaths.apiServerKubeletClient),
              secretProjection(secrets.frontProxyCA, pkiPaths.frontProxyCA),
              secretProjection(secrets.frontProxyClient, pkiPaths.frontProxyClient),
              secretProjection(secrets.sa, pkiPaths.sa),
              ...(etcd.certsSecret
                ? [
                    {
                      secret: {
                        name: etcd.certsSecret,
                        items: ['ca.crt', 'server.crt', 'server.key'].map((k) => ({ key: k, path: `etcd/${k}` })),
                      },
                    },
                  ]
                : []),
            ],
          },
        },
        { name: 'etc-ca-certificates', secret: caSecret },
        { name: 'usr-share-ca-certificates', secret: caSecret },
        { name: 'usr-local-share-ca-certificates', secret: caSecret },
      ],
    },
  };
}
