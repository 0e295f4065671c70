{{- /* Node trust (DaemonSet writing containerd certs.d and the step CA file on every node). */ -}}
{{- /* $ -> <release>-node-trust: the name of its objects, and of the namespace they live in. */ -}}
{{- define "homeci.nodeTrust.name" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "node-trust") -}}
{{- end -}}

{{- /* The registry host's directory on the node: <containerdCertsDir>/<registry host>. */ -}}
{{- define "homeci.nodeTrust.registryDir" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.nodeTrust.containerdCertsDir) (include "homeci-lib.host" (dict "ctx" . "component" "registry")) -}}
{{- end -}}

{{- /* Cross-field rules between nodeTrust and the drone runner. */ -}}
{{- define "homeci.nodeTrust.validate" -}}
{{- $runner := (((.Values.drone | default dict).runner) | default dict) -}}
{{- $nodeCA := ($runner.nodeCA | default dict) -}}
{{- if and .Values.nodeTrust.enabled $nodeCA.hostDir (ne (trimSuffix "/" (toString $nodeCA.hostDir)) (trimSuffix "/" .Values.nodeTrust.hostDir)) -}}
{{- fail (printf "drone.runner.nodeCA.hostDir (%s) must equal nodeTrust.hostDir (%s): the runner mounts the file the DaemonSet writes" $nodeCA.hostDir .Values.nodeTrust.hostDir) -}}
{{- end -}}
{{- end -}}
