{{/* Names (cross-chart contract: <release>-<component>, never `drone-server`). */}}
{{- define "homeci-drone.fullname" -}}
{{- printf "%s-drone" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeci-drone.runnerName" -}}
{{- printf "%s-drone-runner" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeci-drone.buildNamespace" -}}
{{- printf "%s-builds" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeci-drone.global" -}}
{{- toYaml (.Values.global | default dict) -}}
{{- end -}}

{{/* Selector labels: (dict "ctx" $ "component" "ci-server|ci-runner|ci-bootstrap"). */}}
{{- define "homeci-drone.selectorLabels" -}}
app.kubernetes.io/name: {{ ternary "drone-runner-kube" "drone" (eq .component "ci-runner") }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "homeci-drone.labels" -}}
{{ include "homeci-drone.selectorLabels" . }}
app.kubernetes.io/version: {{ ternary .ctx.Values.runner.image.tag .ctx.Values.server.image.tag (eq .component "ci-runner") | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "homeci-drone.domain" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- $domain := $g.domain | default "homeci.localhost" | toString -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}$" $domain -}}
{{- fail (printf "global.domain %q is an IP address, but hosts are <label>.<domain> under one *.<domain> certificate: use a DNS name that resolves to the node, such as the wildcard-DNS name %s.sslip.io or a local domain like home.lan" $domain (replace "." "-" $domain)) -}}
{{- else if regexMatch "(^|[.])[0-9]+$" $domain -}}
{{- fail (printf "global.domain %q ends in an all-numeric label, which no DNS name may (it reads as an IP address): use a name such as home.lan or homeci.localhost" $domain) -}}
{{- end -}}
{{- $domain -}}
{{- end -}}

{{/* Public host of a component: (dict "ctx" $ "component" "git|ci|registry"). */}}
{{- define "homeci-drone.host" -}}
{{- $g := fromYaml (include "homeci-drone.global" .ctx) -}}
{{- printf "%s.%s" (dig "hosts" .component .component $g) (include "homeci-drone.domain" .ctx) -}}
{{- end -}}

{{/* In-cluster name of the server Service: the webhook target Gogs allow-lists and the runner's RPC host. */}}
{{- define "homeci-drone.internalHost" -}}
{{- printf "%s.%s.svc" (include "homeci-drone.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "homeci-drone.gogsServer" -}}
{{- .Values.server.gogsServer | default (printf "http://%s-gogs.%s.svc:3000" .Release.Name .Release.Namespace) -}}
{{- end -}}

{{- define "homeci-drone.adminSecret" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- .Values.admin.existingSecret | default (dig "admin" "existingSecret" "" $g) | default (printf "%s-admin" .Release.Name) -}}
{{- end -}}

{{- define "homeci-drone.serverSecret" -}}
{{- .Values.server.existingSecret | default (include "homeci-drone.fullname" .) -}}
{{- end -}}

{{- define "homeci-drone.machineSecret" -}}
{{- .Values.machine.existingSecret | default (printf "%s-machine" (include "homeci-drone.fullname" .)) -}}
{{- end -}}

{{- define "homeci-drone.withCA" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- if dig "tls" "mode" "" $g -}}true{{- end -}}
{{- end -}}

{{- /*
Image reference <repository>:<tag>[@<digest>], global.imageRegistry prefixed when set:
(dict "ctx" $ "image" .Values.server.image "key" "server.image"). A moving tag fails in one sentence
naming the key.
*/ -}}
{{- define "homeci-drone.image" -}}
{{- $g := fromYaml (include "homeci-drone.global" .ctx) -}}
{{- $tag := toString .image.tag -}}
{{- $key := printf "%s%s" (include "homeci-drone.valuesPrefix" .ctx) .key -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" $key $tag $key) -}}
{{- end -}}
{{- $ref := printf "%s:%s" .image.repository $tag -}}
{{- with $g.imageRegistry -}}{{- $ref = printf "%s/%s" (trimSuffix "/" (toString .)) $ref -}}{{- end -}}
{{- with .image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* Dotted path of this chart's values in the user's install: "drone." inside the umbrella, "" alone. */ -}}
{{- define "homeci-drone.valuesPrefix" -}}
{{- if contains "/charts/" .Template.BasePath -}}{{ .Chart.Name }}.{{- end -}}
{{- end -}}

{{- define "homeci-drone.imagePullSecrets" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- with $g.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "homeci-drone.storageClass" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- .Values.server.persistence.storageClass | default $g.storageClass | default "" -}}
{{- end -}}

{{- define "homeci-drone.ingressClass" -}}
{{- $g := fromYaml (include "homeci-drone.global" .) -}}
{{- $g.ingressClass | default "homeci" -}}
{{- end -}}

{{/* Node directory the runner mounts into steps; the umbrella's node-trust DaemonSet writes ca.crt there. */}}
{{- define "homeci-drone.nodeCADir" -}}
{{- printf "%s/%s.%s" (trimSuffix "/" .Values.runner.nodeCA.hostDir) .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "homeci-drone.buildPodSecurity" -}}
{{- if eq .Values.runner.buildNamespace.podSecurity "auto" -}}
{{- ternary "privileged" "baseline" .Values.runner.nodeCA.enabled -}}
{{- else -}}
{{- .Values.runner.buildNamespace.podSecurity -}}
{{- end -}}
{{- end -}}

{{/* Restricted-compatible container security context of the server and the runner: uid/gid 65532 (the
"nonroot" id of distroless-style images; >= 10000 keeps clear of host users). Both are static programs
that need no passwd entry; the server's data volume is writable through fsGroup. */}}
{{- define "homeci-drone.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "homeci-drone.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}
