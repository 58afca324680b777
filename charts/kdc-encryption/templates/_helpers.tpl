{{- define "kdc.labels" -}}
app.kubernetes.io/part-of: kdc-encryption
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "kdc.selector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* One name per component and release, so sharded releases can live side by side. */}}
{{- define "kdc.name" -}}
{{- if eq .root.Release.Name "kdc" -}}{{ .component }}{{- else -}}{{ printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "kdc.openBaoCaPath" -}}/etc/kdc/openbao-ca/ca.crt{{- end -}}

{{- define "kdc.encryptionReconcilerEnabled" -}}
{{- if and .Values.encryptionReconciler.enabled .Values.openBao.enabled -}}true{{- end -}}
{{- end -}}

{{/* Pod-level settings both controller Deployments share. */}}
{{- define "kdc.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
# Leader election hands over within a lease duration; SIGTERM releases the lease at once.
terminationGracePeriodSeconds: 30
{{- end -}}

{{- define "kdc.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The environment every controller reads the same way. */}}
{{- define "kdc.baseEnv" -}}
- { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
- { name: POD_NAMESPACE, valueFrom: { fieldRef: { fieldPath: metadata.namespace } } }
{{- /* Metrics name no tenant, yet only the scraper needs them: bound to the pod IP by default, not every interface. */}}
- { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
- { name: METRICS_ADDR, value: "{{ .Values.metricsBindAddress | default "$(POD_IP)" }}:{{ .Values.metricsPort }}" }
{{- end -}}

{{/* Metrics port, probes on it, and the restricted container security context. */}}
{{- define "kdc.containerCommon" -}}
ports:
  - { name: metrics, containerPort: {{ .Values.metricsPort }} }
livenessProbe:
  httpGet: { path: /healthz, port: metrics }
  periodSeconds: 20
readinessProbe:
  httpGet: { path: /readyz, port: metrics }
  periodSeconds: 10
securityContext: {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/*
An image reference from { registry, repository, tag, digest }: <registry>/<repository>:<tag>[@<digest>],
the tag defaulting to the chart's appVersion and the registry to imageRegistry. Empty when the
repository is empty (the setting is off). Call with (dict "root" $ "image" <values> "name" "<values path>").
*/}}
{{- define "kdc.image" -}}
{{- with .image.repository -}}
{{- $registry := $.image.registry | default $.root.Values.imageRegistry -}}
{{- $ref := ternary (printf "%s/%s" $registry .) . (ne $registry "") -}}
{{- $ref = printf "%s:%s" $ref ($.image.tag | default $.root.Chart.AppVersion) -}}
{{- with $.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) }}{{ fail (printf "%s.digest %q is not a sha256 digest (sha256:<64 hex>)" $.name .) }}{{ end -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}
{{- end -}}
