{{- /* Node trust (DaemonSet writing containerd certs.d and the step CA file on every node). */ -}}
{{- /* $ -> <release>-node-trust: the name of its objects, and of the namespace they live in. */ -}}
{{- define "homeci.nodeTrust.name" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "node-trust") -}}
{{- end -}}

{{- /* The registry host's directory on the node: <containerdCertsDir>/<registry host>. */ -}}
{{- define "homeci.nodeTrust.registryDir" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.nodeTrust.containerdCertsDir) (include "homeci-lib.host" (dict "ctx" . "component" "registry")) -}}
{{- end -}}

{{- /* Cross-field rules between nodeTrust and the drone runner's hostPath CA delivery. */ -}}
{{- define "homeci.nodeTrust.validate" -}}
{{- $stepCA := dig "runner" "stepCA" dict (.Values.drone | default dict) -}}
{{- if and .Values.nodeTrust.enabled $stepCA.hostDir (ne (trimSuffix "/" (toString $stepCA.hostDir)) (trimSuffix "/" .Values.nodeTrust.hostDir)) -}}
{{- fail (printf "drone.runner.stepCA.hostDir (%s) must equal nodeTrust.hostDir (%s): with hostPath delivery the runner mounts the directory the DaemonSet writes" $stepCA.hostDir .Values.nodeTrust.hostDir) -}}
{{- end -}}
{{- end -}}

{{- /*
$ -> "true" when the Drone runner delivers the CA to steps through the node directory (hostPath),
resolved as the drone subchart does (auto = hostPath below Kubernetes 1.36, where
MutatingAdmissionPolicy v1 is missing).
*/ -}}
{{- define "homeci.nodeTrust.stepDir" -}}
{{- $drone := .Values.drone | default dict -}}
{{- $mode := dig "runner" "stepCA" "delivery" "auto" $drone -}}
{{- if and $drone.enabled (dig "runner" "enabled" true $drone) -}}
{{- if or (eq $mode "hostPath") (and (eq $mode "auto") (not (semverCompare ">=1.36.0-0" .Capabilities.KubeVersion.Version))) -}}true{{- end -}}
{{- end -}}
{{- end -}}
