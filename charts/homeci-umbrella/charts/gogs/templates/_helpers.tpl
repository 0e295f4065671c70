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

{{- /* config.defaultBranch, refused in one sentence where git would refuse the branch name. */ -}}
{{- define "homeci-gogs.defaultBranch" -}}
{{- $branch := toString .Values.config.defaultBranch -}}
{{- if regexMatch "[.][.]|//|/$|[.]lock$|/[.]|@[{]" $branch -}}
{{- fail (printf "%sconfig.defaultBranch %q is not a branch name git accepts (no \"..\", \"//\", \"/.\" or \"@{\", no trailing / or .lock): use a name such as main" (include "homeci-lib.valuesPrefix" .) $branch) -}}
{{- end -}}
{{- $branch -}}
{{- end -}}
