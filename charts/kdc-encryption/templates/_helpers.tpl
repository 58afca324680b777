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
