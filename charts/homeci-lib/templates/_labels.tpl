{{- /*
The app.kubernetes.io recommended labels. Arguments:
  (dict "ctx" $ ["name" "drone-runner-kube"] ["component" "ci-runner"] ["version" .Values.x.image.tag])
name defaults to the chart's name (an explicit "" leaves it out, as the node-trust selector does),
component is left out when empty, version defaults to the chart's appVersion (cut to a label value:
63 characters, starting and ending with a letter or digit, as an image tag may not).
Selector labels never change on upgrade: keep name and component of an existing workload as they are.
*/ -}}

{{- define "homeci-lib.selectorLabels" -}}
{{- include "homeci-lib.args" (list "homeci-lib.selectorLabels" . (dict "ctx" "context" "name" "string?" "component" "string?") `(dict "ctx" $ ["name" "drone-runner-kube"] ["component" "ci-runner"])`) -}}
{{- $name := ternary .name .ctx.Chart.Name (hasKey . "name") -}}
{{- with $name }}
app.kubernetes.io/name: {{ . }}
{{- end }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "homeci-lib.labels" -}}
{{- include "homeci-lib.args" (list "homeci-lib.labels" . (dict "ctx" "context" "name" "string?" "component" "string?" "version" "scalar?") `(dict "ctx" $ ["name" "drone-runner-kube"] ["component" "ci-runner"] ["version" .Values.image.tag])`) -}}
{{ include "homeci-lib.selectorLabels" (pick . "ctx" "name" "component") | trim }}
app.kubernetes.io/version: {{ regexReplaceAll "^[^A-Za-z0-9]+|[^A-Za-z0-9]+$" (.version | default .ctx.Chart.AppVersion | toString | trunc 63) "" | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}
