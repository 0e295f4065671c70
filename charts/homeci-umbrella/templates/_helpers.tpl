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
"true" when the existing serving certificate Secret can be kept: (dict "old" <lookup result>
"hosts" <homeci.servingDnsNames> "caFingerprint" <sha256 of the CA PEM> "renewBeforeDays" <int>).
Kept while it was issued for the same host list by the same CA and more than renewBeforeDays remain.
*/ -}}
{{- define "homeci.servingCertReusable" -}}
{{- $old := .old | default dict -}}
{{- $data := $old.data | default dict -}}
{{- $a := ($old.metadata | default dict).annotations | default dict -}}
{{- if and (index $data "tls.crt") (index $data "tls.key") (get $a "homeci.dev/not-after") -}}
{{- if and (eq (get $a "homeci.dev/hosts") .hosts) (eq (get $a "homeci.dev/ca-sha256") .caFingerprint) -}}
{{- $notAfter := toDate "2006-01-02T15:04:05Z07:00" (get $a "homeci.dev/not-after") | unixEpoch | int64 -}}
{{- $left := sub $notAfter (now | unixEpoch | int64) -}}
{{- if gt $left (mul 86400 (int .renewBeforeDays)) -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
