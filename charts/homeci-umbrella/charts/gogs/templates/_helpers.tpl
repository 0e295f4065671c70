{{- /*
Gogs' own rules. Names, labels, hosts, image, pull secrets, IngressClass, storage class, admin Secret,
security contexts and the NetworkPolicy switch come from the homeci-lib library chart (charts/homeci-lib).
*/ -}}

{{- /*
$ -> [security] LOCAL_NETWORK_ALLOWLIST: Drone's webhook host (the in-cluster name of the Drone Service,
<release>-drone.<namespace>.svc, see the drone subchart) and config.extraLocalNetworkAllowlist.
*/ -}}
{{- define "homeci-gogs.allowlist" -}}
{{- $drone := include "homeci-lib.serviceHost" (dict "ctx" . "component" "drone") -}}
{{- $hosts := prepend (.Values.config.extraLocalNetworkAllowlist | default list) $drone -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{- /* $ -> the Secret holding SECRET_KEY: secretKey.existingSecret, else <release>-gogs. */ -}}
{{- define "homeci-gogs.secretKeySecret" -}}
{{- .Values.secretKey.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "component" "gogs")) -}}
{{- end -}}

{{- /*
$ -> JSON (dict "name" <Secret> ...) describing the Secret with SECRET_KEY for homeci-lib.keptSecretData
and homeci-lib.secretsChecksum: generated (key secret-key, 48 characters) unless secretKey.existingSecret.
*/ -}}
{{- define "homeci-gogs.secretKeyEntry" -}}
{{- if .Values.secretKey.existingSecret -}}
{{- dict "name" .Values.secretKey.existingSecret "keys" (list "secret-key") | toJson -}}
{{- else -}}
{{- dict "name" (include "homeci-lib.fullname" (dict "ctx" . "component" "gogs")) "generate" (dict "secret-key" 48) | toJson -}}
{{- end -}}
{{- end -}}

{{- /*
$ -> the checksum/secrets pod annotation's value: the Secrets `gogs web` reads only at start (SECRET_KEY,
the PostgreSQL password). Not the admin Secret: create-admin.sh follows it without a restart.
*/ -}}
{{- define "homeci-gogs.secretsChecksum" -}}
{{- $entries := list (include "homeci-gogs.secretKeyEntry" . | fromJson) -}}
{{- if eq .Values.database.type "postgres" -}}
{{- $entries = append $entries (dict "name" .Values.database.postgres.existingSecret "keys" (list .Values.database.postgres.passwordKey)) -}}
{{- end -}}
{{- include "homeci-lib.secretsChecksum" (dict "ctx" . "secrets" $entries) -}}
{{- end -}}

{{- /* config.defaultBranch, refused in one sentence where git would refuse the branch name. */ -}}
{{- define "homeci-gogs.defaultBranch" -}}
{{- $branch := toString .Values.config.defaultBranch -}}
{{- if regexMatch "[.][.]|//|/$|[.]lock$|/[.]|@[{]" $branch -}}
{{- fail (printf "%sconfig.defaultBranch %q is not a branch name git accepts (no \"..\", \"//\", \"/.\" or \"@{\", no trailing / or .lock): use a name such as main" (include "homeci-lib.valuesPrefix" .) $branch) -}}
{{- end -}}
{{- $branch -}}
{{- end -}}
