{{- /*
Umbrella helpers, all prefixed `homeci.`. Subcharts never call these (each works alone); they
follow the same naming contract from `global.*` values instead.
*/ -}}

{{- /*
Public DNS suffix. An IP address cannot be one: hosts are <label>.<domain> and the serving certificate
covers *.<domain>, and a wildcard of an address is no name any client resolves or verifies.
*/ -}}
{{- define "homeci.domain" -}}
{{- $domain := required "global.domain must be set to a DNS name such as homeci.localhost" .Values.global.domain -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}$" $domain -}}
{{- fail (printf "global.domain %q is an IP address, but hosts are <label>.<domain> under one *.<domain> certificate: use a DNS name that resolves to the node, such as the wildcard-DNS name %s.sslip.io or a local domain like home.lan" $domain (replace "." "-" $domain)) -}}
{{- else if regexMatch "(^|[.])[0-9]+$" $domain -}}
{{- fail (printf "global.domain %q ends in an all-numeric label, which no DNS name may (it reads as an IP address): use a name such as home.lan or homeci.localhost" $domain) -}}
{{- end -}}
{{- $domain -}}
{{- end -}}

{{- /* Public host of a component: (dict "ctx" $ "component" "git|ci|registry") -> git.<domain>. */ -}}
{{- define "homeci.host" -}}
{{- $label := get .ctx.Values.global.hosts .component -}}
{{- if not $label -}}
{{- fail (printf "global.hosts.%s is empty: set it to a DNS label such as %s" .component .component) -}}
{{- end -}}
{{- printf "%s.%s" $label (include "homeci.domain" .ctx) -}}
{{- end -}}

{{- /* Object names (contract: <release>-<component>). */ -}}
{{- define "homeci.caConfigMapName" -}}{{ .Release.Name }}-ca{{- end -}}
{{- define "homeci.caSecretName" -}}
{{- if eq .Values.global.tls.mode "existingSecret" -}}
{{- .Values.global.tls.existingSecret -}}
{{- else -}}
{{- .Release.Name }}-ca
{{- end -}}
{{- end -}}
{{- define "homeci.tlsSecretName" -}}{{ .Release.Name }}-tls{{- end -}}
{{- define "homeci.adminSecretName" -}}
{{- default (printf "%s-admin" .Release.Name) .Values.global.admin.existingSecret -}}
{{- end -}}

{{- /* Administrator e-mail (default admin@<domain>). */ -}}
{{- define "homeci.adminEmail" -}}
{{- default (printf "admin@%s" (include "homeci.domain" .)) .Values.global.admin.email -}}
{{- end -}}

{{- /* Common labels for objects the umbrella itself renders. */ -}}
{{- define "homeci.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: homeci
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- /*
Every public DNS name the serving certificate covers, sorted and de-duplicated: the host of each
component, *.<domain> (apps deployed by pipelines) and certificates.extraDnsNames.
*/ -}}
{{- define "homeci.servingDnsNames" -}}
{{- $names := list (include "homeci.host" (dict "ctx" . "component" "git")) (include "homeci.host" (dict "ctx" . "component" "ci")) (include "homeci.host" (dict "ctx" . "component" "registry")) (printf "*.%s" (include "homeci.domain" .)) -}}
{{- $names = concat $names (.Values.certificates.extraDnsNames | default list) -}}
{{- $names | uniq | sortAlpha | join "," -}}
{{- end -}}

{{- /* true when the chart talks to a real cluster (install/upgrade, --dry-run=server), empty offline. */ -}}
{{- define "homeci.online" -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}true{{- end -}}
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

{{- /*
Image reference <repository>:<tag>[@<digest>], global.imageRegistry prefixed when set:
(dict "ctx" $ "image" .Values.x.image "key" "x.image"). A moving tag fails in one sentence naming the key.
*/ -}}
{{- define "homeci.image" -}}
{{- $tag := toString .image.tag -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" .key $tag .key) -}}
{{- end -}}
{{- $ref := printf "%s:%s" .image.repository $tag -}}
{{- with .ctx.Values.global.imageRegistry -}}{{- $ref = printf "%s/%s" (trimSuffix "/" .) $ref -}}{{- end -}}
{{- with .image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}
