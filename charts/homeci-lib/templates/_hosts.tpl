{{- /*
Domain and hosts. The rule, written once: the public host of a component is
<global.hosts.<component>>.<global.domain>. The defaults live in each chart's values.yaml (global.domain,
global.hosts), never here.
*/ -}}

{{- /*
(dict "domain" <value> "key" "global.domain") -> the domain, refused in one sentence naming key when it
is an IP address or ends in an all-numeric label (a :port after it is allowed and ignored): hosts are
<label>.<domain> under one *.<domain> certificate, and a wildcard of an address is no name any client
resolves or verifies.
*/ -}}
{{- define "homeci-lib.checkDomain" -}}
{{- $domain := toString .domain -}}
{{- $bare := regexReplaceAll ":[0-9]+$" $domain "" -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}$" $bare -}}
{{- fail (printf "%s %q is an IP address, but hosts are <label>.<domain> under one *.<domain> certificate: use a DNS name that resolves to the node, such as the wildcard-DNS name %s.sslip.io or a local domain like home.lan" .key $domain (replace "." "-" $bare)) -}}
{{- else if regexMatch "(^|[.])[0-9]+$" $bare -}}
{{- fail (printf "%s %q ends in an all-numeric label, which no DNS name may (it reads as an IP address): use a name such as home.lan or homeci.localhost" .key $domain) -}}
{{- end -}}
{{- $domain -}}
{{- end -}}

{{- /* $ -> global.domain, the public DNS suffix (checked by homeci-lib.checkDomain). */ -}}
{{- define "homeci-lib.domain" -}}
{{- $g := .Values.global | default dict -}}
{{- $domain := required "global.domain is empty: set it to a DNS name such as homeci.localhost" $g.domain -}}
{{- include "homeci-lib.checkDomain" (dict "domain" $domain "key" "global.domain") -}}
{{- end -}}

{{- /* (dict "ctx" $ "component" "git|ci|registry") -> <global.hosts.git>.<global.domain>. */ -}}
{{- define "homeci-lib.host" -}}
{{- $label := dig "hosts" .component "" (.ctx.Values.global | default dict) -}}
{{- if not $label -}}
{{- fail (printf "global.hosts.%s is empty: set it to a DNS label such as %s" .component .component) -}}
{{- end -}}
{{- printf "%s.%s" $label (include "homeci-lib.domain" .ctx) -}}
{{- end -}}

{{- /*
(dict "ctx" $ "className" <the chart's own override, or "">) -> the IngressClass: the override, else
global.ingressClass.
*/ -}}
{{- define "homeci-lib.ingressClass" -}}
{{- $g := .ctx.Values.global | default dict -}}
{{- .className | default $g.ingressClass | required "global.ingressClass is empty: set it to the IngressClass of your ingress controller, such as homeci" -}}
{{- end -}}
