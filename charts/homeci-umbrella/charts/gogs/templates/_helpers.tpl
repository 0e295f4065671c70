{{/* Object name: <release>-gogs (cross-chart contract: release name, not the chart fullname). */}}
{{- define "homeci-gogs.fullname" -}}
{{- printf "%s-gogs" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeci-gogs.global" -}}
{{- toYaml (.Values.global | default dict) -}}
{{- end -}}

{{- define "homeci-gogs.selectorLabels" -}}
app.kubernetes.io/name: gogs
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: git
{{- end -}}

{{- define "homeci-gogs.labels" -}}
{{ include "homeci-gogs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Public DNS suffix and host (git.<domain>). */}}
{{- define "homeci-gogs.domain" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- $g.domain | default "homeci.localhost" -}}
{{- end -}}

{{- define "homeci-gogs.host" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- printf "%s.%s" (dig "hosts" "git" "git" $g) (include "homeci-gogs.domain" .) -}}
{{- end -}}

{{/* Drone's webhook host: the in-cluster name of the Drone Service (see the drone subchart). */}}
{{- define "homeci-gogs.droneWebhookHost" -}}
{{- printf "%s-drone.%s.svc" .Release.Name .Release.Namespace -}}
{{- end -}}

{{- define "homeci-gogs.allowlist" -}}
{{- $hosts := prepend (.Values.config.extraLocalNetworkAllowlist | default list) (include "homeci-gogs.droneWebhookHost" .) -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{- define "homeci-gogs.adminSecret" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- .Values.admin.existingSecret | default (dig "admin" "existingSecret" "" $g) | default (printf "%s-admin" .Release.Name) -}}
{{- end -}}

{{- define "homeci-gogs.secretKeySecret" -}}
{{- .Values.secretKey.existingSecret | default (include "homeci-gogs.fullname" .) -}}
{{- end -}}

{{/* Umbrella mode: global.tls.mode is set, so the ConfigMap <release>-ca exists and is mounted. */}}
{{- define "homeci-gogs.withCA" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- if dig "tls" "mode" "" $g -}}true{{- end -}}
{{- end -}}

{{- define "homeci-gogs.image" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- $repo := .Values.image.repository -}}
{{- with $g.imageRegistry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}{{- end -}}
{{- printf "%s:%s" $repo .Values.image.tag -}}
{{- end -}}

{{- define "homeci-gogs.imagePullSecrets" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- with $g.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "homeci-gogs.storageClass" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- .Values.persistence.storageClass | default $g.storageClass | default "" -}}
{{- end -}}

{{- define "homeci-gogs.ingressClass" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- $g.ingressClass | default "homeci" -}}
{{- end -}}
