{{- /* Node trust (DaemonSet writing containerd certs.d and the step CA file on every node). */ -}}
{{- define "homeci.nodeTrust.name" -}}{{ .Release.Name }}-node-trust{{- end -}}
{{- define "homeci.nodeTrust.namespace" -}}{{ .Release.Name }}-node-trust{{- end -}}

{{- define "homeci.nodeTrust.selectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-trust
{{- end -}}

{{- /* The registry host's directory on the node: <containerdCertsDir>/<registry host>. */ -}}
{{- define "homeci.nodeTrust.registryDir" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.nodeTrust.containerdCertsDir) (include "homeci.host" (dict "ctx" . "component" "registry")) -}}
{{- end -}}

{{- /* The step CA directory on the node; the drone runner mounts it at /etc/homeci (same rule as its chart). */ -}}
{{- define "homeci.nodeTrust.caDir" -}}
{{- printf "%s/%s.%s" (trimSuffix "/" .Values.nodeTrust.hostDir) .Release.Namespace .Release.Name -}}
{{- end -}}

{{- /* Cross-field rules between nodeTrust and the drone runner. */ -}}
{{- define "homeci.nodeTrust.validate" -}}
{{- $runner := (((.Values.drone | default dict).runner) | default dict) -}}
{{- $nodeCA := ($runner.nodeCA | default dict) -}}
{{- if and .Values.nodeTrust.enabled $nodeCA.hostDir (ne (trimSuffix "/" (toString $nodeCA.hostDir)) (trimSuffix "/" .Values.nodeTrust.hostDir)) -}}
{{- fail (printf "drone.runner.nodeCA.hostDir (%s) must equal nodeTrust.hostDir (%s): the runner mounts the file the DaemonSet writes" $nodeCA.hostDir .Values.nodeTrust.hostDir) -}}
{{- end -}}
{{- end -}}
