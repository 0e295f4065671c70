{{- /*
Umbrella helpers, all prefixed `homeci.`: the CA and serving-certificate rules only this chart renders.
Names, labels, domain and hosts, image references, pull secrets and security contexts come from the
homeci-lib library chart (charts/homeci-lib), which every subchart uses too.
*/ -}}

{{- /* $ -> the Secret holding the CA key: global.tls.existingSecret in existingSecret mode, else <release>-ca. */ -}}
{{- define "homeci.caSecretName" -}}
{{- if eq .Values.global.tls.mode "existingSecret" -}}
{{- .Values.global.tls.existingSecret -}}
{{- else -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "ca") -}}
{{- end -}}
{{- end -}}
{{- /* Administrator e-mail (default admin@<domain>). */ -}}
{{- define "homeci.adminEmail" -}}
{{- default (printf "admin@%s" (include "homeci-lib.domain" .)) .Values.global.admin.email -}}
{{- end -}}

{{- /*
Every public DNS name the serving certificate covers, sorted and de-duplicated: the host of each
component, *.<domain> (apps deployed by pipelines) and certificates.extraDnsNames.
*/ -}}
{{- define "homeci.servingDnsNames" -}}
{{- $names := list (include "homeci-lib.host" (dict "ctx" . "component" "git")) (include "homeci-lib.host" (dict "ctx" . "component" "ci")) (include "homeci-lib.host" (dict "ctx" . "component" "registry")) (printf "*.%s" (include "homeci-lib.domain" .)) -}}
{{- $names = concat $names (.Values.certificates.extraDnsNames | default list) -}}
{{- $names | uniq | sortAlpha | join "," -}}
{{- end -}}

{{- /*
$ -> YAML map program -> version (x.y.z) of each program of the suite that keeps data: Gogs, Drone and
the registry, from their subcharts' appVersion (Gogs' "next-0.14.3" is 0.14.3); a disabled subchart
(e.g. registry.enabled=false) has none.
*/ -}}
{{- define "homeci.dataVersions" -}}
{{- range $program, $sub := dict "gogs" .Subcharts.gogs "drone" .Subcharts.drone "registry" .Subcharts.registry }}
{{- if $sub }}
{{ $program }}: {{ regexFind "[0-9]+\\.[0-9]+\\.[0-9]+" (toString $sub.Chart.AppVersion) | quote }}
{{- end }}
{{- end }}
{{- end -}}
