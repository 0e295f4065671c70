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
{{- $domain := $g.domain | default "homeci.localhost" | toString -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}$" $domain -}}
{{- fail (printf "global.domain %q is an IP address, but hosts are <label>.<domain> under one *.<domain> certificate: use a DNS name that resolves to the node, such as the wildcard-DNS name %s.sslip.io or a local domain like home.lan" $domain (replace "." "-" $domain)) -}}
{{- else if regexMatch "(^|[.])[0-9]+$" $domain -}}
{{- fail (printf "global.domain %q ends in an all-numeric label, which no DNS name may (it reads as an IP address): use a name such as home.lan or homeci.localhost" $domain) -}}
{{- end -}}
{{- $domain -}}
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

{{- /* Image reference <repository>:<tag>[@<digest>], global.imageRegistry prefixed when set; a moving tag
fails in one sentence naming the key. */ -}}
{{- define "homeci-gogs.image" -}}
{{- $g := fromYaml (include "homeci-gogs.global" .) -}}
{{- $tag := toString .Values.image.tag -}}
{{- $key := printf "%s%s" (include "homeci-gogs.valuesPrefix" .) "image" -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" $key $tag $key) -}}
{{- end -}}
{{- $ref := printf "%s:%s" .Values.image.repository $tag -}}
{{- with $g.imageRegistry -}}{{- $ref = printf "%s/%s" (trimSuffix "/" .) $ref -}}{{- end -}}
{{- with .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* Dotted path of this chart's values in the user's install: "gogs." inside the umbrella, "" alone. */ -}}
{{- define "homeci-gogs.valuesPrefix" -}}
{{- if contains "/charts/" .Template.BasePath -}}{{ .Chart.Name }}.{{- end -}}
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

{{- /* config.defaultBranch, refused in one sentence where git would refuse the branch name. */ -}}
{{- define "homeci-gogs.defaultBranch" -}}
{{- $branch := toString .Values.config.defaultBranch -}}
{{- if regexMatch "[.][.]|//|/$|[.]lock$|/[.]|@[{]" $branch -}}
{{- fail (printf "%sconfig.defaultBranch %q is not a branch name git accepts (no \"..\", \"//\", \"/.\" or \"@{\", no trailing / or .lock): use a name such as main" (include "homeci-gogs.valuesPrefix" .) $branch) -}}
{{- end -}}
{{- $branch -}}
{{- end -}}
