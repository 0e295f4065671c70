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

{{- /*
$ -> how the CA reaches step pods: admissionPolicy, hostPath or none. runner.stepCA.delivery, where
auto = admissionPolicy on Kubernetes >= 1.36 (MutatingAdmissionPolicy v1 is GA and on by default
there; Helm's offline capabilities list API groups, not kinds, so the version decides), else
hostPath; none outside the umbrella (no CA).
*/ -}}
{{- define "homeci-drone.stepCA" -}}
{{- $mode := .Values.runner.stepCA.delivery -}}
{{- $map := semverCompare ">=1.36.0-0" .Capabilities.KubeVersion.Version -}}
{{- if not (include "homeci-lib.umbrella" .) -}}
none
{{- else if eq $mode "auto" -}}
{{- ternary "admissionPolicy" "hostPath" $map -}}
{{- else -}}
{{- if and (eq $mode "admissionPolicy") (not $map) -}}
{{- fail (printf "drone.runner.stepCA.delivery is admissionPolicy but the cluster runs Kubernetes %s, and MutatingAdmissionPolicy v1 needs 1.36 or newer: set drone.runner.stepCA.delivery=hostPath (or auto)" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}
{{- end -}}

{{- /*
$ -> JSON homeci-lib.secretsChecksum entry of the Secret with rpc-secret, database-secret, cookie-secret:
generated (32 characters each, homeci-lib.keptSecretData) unless server.existingSecret.
*/ -}}
{{- define "homeci-drone.serverSecretEntry" -}}
{{- if .Values.server.existingSecret -}}
{{- dict "name" .Values.server.existingSecret | toJson -}}
{{- else -}}
{{- dict "name" (include "homeci-drone.serverSecret" .) "generate" (dict "rpc-secret" 32 "database-secret" 32 "cookie-secret" 32) | toJson -}}
{{- end -}}
{{- end -}}

{{- /* $ -> JSON entry of the machine Secret (key token): generated unless machine.existingSecret. */ -}}
{{- define "homeci-drone.machineSecretEntry" -}}
{{- if .Values.machine.existingSecret -}}
{{- dict "name" .Values.machine.existingSecret "keys" (list "token") | toJson -}}
{{- else -}}
{{- dict "name" (include "homeci-drone.machineSecret" .) "generate" (dict "token" 32) | toJson -}}
{{- end -}}
{{- end -}}

{{- /*
$ -> checksum/secrets of the server pod: every Secret it reads at start (server and machine Secrets, the
admin's user name, the PostgreSQL password). Not the admin password: Drone never reads it.
*/ -}}
{{- define "homeci-drone.serverSecretsChecksum" -}}
{{- $entries := list (include "homeci-drone.serverSecretEntry" . | fromJson) (include "homeci-drone.machineSecretEntry" . | fromJson) (include "homeci-lib.adminUsernameEntry" (dict "ctx" . "existingSecret" .Values.admin.existingSecret) | fromJson) -}}
{{- $db := .Values.server.database -}}
{{- if eq $db.type "postgres" -}}
{{- $entries = append $entries (dict "name" $db.postgres.existingSecret "keys" (list $db.postgres.passwordKey)) -}}
{{- end -}}
{{- include "homeci-lib.secretsChecksum" (dict "ctx" . "secrets" $entries) -}}
{{- end -}}

{{- /* $ -> checksum/secrets of the runner pod: the RPC secret it reads at start. */ -}}
{{- define "homeci-drone.runnerSecretsChecksum" -}}
{{- $entry := merge (dict "keys" (list "rpc-secret")) (include "homeci-drone.serverSecretEntry" . | fromJson) -}}
{{- include "homeci-lib.secretsChecksum" (dict "ctx" . "secrets" (list $entry)) -}}
{{- end -}}

{{- /* $ -> the build namespace's Pod Security level: runner.buildNamespace.podSecurity, auto = privileged with hostPath CA delivery, else baseline. */ -}}
{{- define "homeci-drone.buildPodSecurity" -}}
{{- if eq .Values.runner.buildNamespace.podSecurity "auto" -}}
{{- ternary "privileged" "baseline" (eq (include "homeci-drone.stepCA" .) "hostPath") -}}
{{- else -}}
{{- .Values.runner.buildNamespace.podSecurity -}}
{{- end -}}
{{- end -}}

{{- /* $ -> the build namespace: <release>-builds. */ -}}
{{- define "homeci-drone.buildNamespace" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "builds") -}}
{{- end -}}

{{- /*
(dict "ctx" $ "suffix" "build-ca") -> <release namespace>-<release>-<suffix>: the name of a
cluster-scoped object of this release (admission policies), unique per release and namespace.
*/ -}}
{{- define "homeci-drone.clusterName" -}}
{{- printf "%s-%s-%s" .ctx.Release.Namespace .ctx.Release.Name .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* $ -> http://127.0.0.1:<server.bridge.ports.gogs>: where Drone reaches Gogs, through the Gogs bridge in its pod. */ -}}
{{- define "homeci-drone.bridgeUrl" -}}
{{- printf "http://127.0.0.1:%v" .Values.server.bridge.ports.gogs -}}
{{- end -}}

{{- /*
$ -> <release>-drone.<namespace>.svc:<server.bridge.ports.hooks>: Drone's webhook host
(DRONE_SERVER_PROXY_HOST), the Service port `hooks` of the bridge. Gogs' allow-list matches the host
name without the port. Fails when the bridge's ports clash with the server's 8080 or with each other.
*/ -}}
{{- define "homeci-drone.hooksHost" -}}
{{- $ports := .Values.server.bridge.ports -}}
{{- if or (eq (int $ports.gogs) 8080) (eq (int $ports.hooks) 8080) (eq (int $ports.gogs) (int $ports.hooks)) -}}
{{- fail (printf "%sserver.bridge.ports.gogs (%v) and .hooks (%v) must differ from each other and from the server's port 8080: pick two other ports" (include "homeci-lib.valuesPrefix" .) $ports.gogs $ports.hooks) -}}
{{- end -}}
{{- printf "%s:%v" (include "homeci-lib.serviceHost" (dict "ctx" . "component" "drone")) $ports.hooks -}}
{{- end -}}
