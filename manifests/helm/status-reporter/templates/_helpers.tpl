{{/* Labels Helm adds on top of the kustomize base's (the comparison ignores exactly these). */}}
{{- define "status-reporter.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of every object: NAME is app.kubernetes.io/name. */}}
{{- define "status-reporter.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: status-reporter
{{ include "status-reporter.helmLabels" .root }}
{{- end -}}

{{- define "status-reporter.webhookImage" -}}
{{ .Values.webhook.image.repository }}:{{ .Values.webhook.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "status-reporter.reporterImage" -}}
{{ .Values.reporter.image.repository }}:{{ .Values.reporter.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Namespaces never injected: kube-system, the release namespace, then excludedNamespaces. */}}
{{- define "status-reporter.excluded" -}}
{{- $all := list "kube-system" .Release.Namespace -}}
{{- range .Values.excludedNamespaces -}}
{{- if not (has . $all) -}}{{- $all = append $all . -}}{{- end -}}
{{- end -}}
{{- toJson $all -}}
{{- end -}}

{{/* The namespaceSelector rule excluding the namespaces above. */}}
{{- define "status-reporter.excludedSelector" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ include "status-reporter.excluded" . }}
{{- end -}}
