{{- /*
Drone's own rules. Names (<release>-drone, <release>-drone-runner, <release>-builds; never
`drone-server`), labels, hosts, images, pull secrets, IngressClass, storage class, admin Secret,
security contexts and the NetworkPolicy switch come from the homeci-lib library chart (charts/homeci-lib).
*/ -}}

{{- /* $ -> the Gogs API base URL: server.gogsServer, else the in-cluster Gogs Service on port 3000. */ -}}
{{- define "homeci-drone.gogsServer" -}}
{{- .Values.server.gogsServer | default (printf "http://%s:3000" (include "homeci-lib.serviceHost" (dict "ctx" . "component" "gogs"))) -}}
{{- end -}}

{{- /* $ -> the Secret with rpc-secret, database-secret, cookie-secret: server.existingSecret, else <release>-drone. */ -}}
{{- define "homeci-drone.serverSecret" -}}
{{- .Values.server.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "component" "drone")) -}}
{{- end -}}

{{- /* $ -> the Secret with the admin's API token: machine.existingSecret, else <release>-drone-machine. */ -}}
{{- define "homeci-drone.machineSecret" -}}
{{- .Values.machine.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "component" "drone-machine")) -}}
{{- end -}}

{{- /* $ -> the build namespace's Pod Security level: runner.buildNamespace.podSecurity, auto = privileged with the node CA (hostPath), else baseline. */ -}}
{{- define "homeci-drone.buildPodSecurity" -}}
{{- if eq .Values.runner.buildNamespace.podSecurity "auto" -}}
{{- ternary "privileged" "baseline" .Values.runner.nodeCA.enabled -}}
{{- else -}}
{{- .Values.runner.buildNamespace.podSecurity -}}
{{- end -}}
{{- end -}}
