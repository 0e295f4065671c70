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
{{- include "homeci-lib.args" (list "homeci-lib.checkDomain" . (dict "domain" "string" "key" "string") `(dict "domain" .Values.global.domain "key" "global.domain")`) -}}
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
{{- include "homeci-lib.args" (list "homeci-lib.domain" . "context" `(include "homeci-lib.domain" $)`) -}}
{{- $g := .Values.global | default dict -}}
{{- $domain := required "global.domain is empty: set it to a DNS name such as homeci.localhost" $g.domain -}}
{{- include "homeci-lib.checkDomain" (dict "domain" $domain "key" "global.domain") -}}
{{- end -}}

{{- /* (dict "ctx" $ "component" "git|ci|registry") -> <global.hosts.git>.<global.domain>. */ -}}
{{- define "homeci-lib.host" -}}
{{- include "homeci-lib.args" (list "homeci-lib.host" . (dict "ctx" "context" "component" "string") `(dict "ctx" $ "component" "git")`) -}}
{{- $label := dig "hosts" .component "" (.ctx.Values.global | default dict) -}}
{{- if not $label -}}
{{- fail (printf "global.hosts.%s is empty: set it to a DNS label such as %s" .component .component) -}}
{{- end -}}
{{- include "homeci-lib.hostName" (dict "label" $label "domain" (include "homeci-lib.domain" .ctx)) -}}
{{- end -}}

{{- /*
(dict "label" <host label> "domain" <domain>) -> <label>.<domain>: the host rule itself, for a chart that
keeps the stack's labels and domain in values of its own (drone-pipelines' stack.hosts, stack.domain).
*/ -}}
{{- define "homeci-lib.hostName" -}}
{{- include "homeci-lib.args" (list "homeci-lib.hostName" . (dict "label" "string" "domain" "string") `(dict "label" "registry" "domain" .Values.stack.domain)`) -}}
{{- printf "%s.%s" .label .domain -}}
{{- end -}}

{{- /*
(dict "ctx" $ ["host" <an explicit host, or "">] ["label" <host label> "domain" <domain>]) -> the image
registry's public host: host when set, else <label>.<domain> — label and domain are global.hosts.registry
and global.domain unless both are given (drone-pipelines gives stack.hosts.registry and stack.domain).
*/ -}}
{{- define "homeci-lib.registryHost" -}}
{{- include "homeci-lib.args" (list "homeci-lib.registryHost" . (dict "ctx" "context" "host" "string?" "label" "string?" "domain" "string?") `(dict "ctx" $ ["host" .Values.host] ["label" <label> "domain" <domain>])`) -}}
{{- if .host -}}
{{- .host -}}
{{- else if or (hasKey . "label") (hasKey . "domain") -}}
{{- if not (and .label .domain) -}}
{{- fail "homeci-lib.registryHost needs both \"label\" and \"domain\" (or neither, for global.hosts.registry and global.domain): call it as (dict \"ctx\" $ \"label\" <label> \"domain\" <domain>)" -}}
{{- end -}}
{{- include "homeci-lib.hostName" (dict "label" .label "domain" .domain) -}}
{{- else -}}
{{- include "homeci-lib.host" (dict "ctx" .ctx "component" "registry") -}}
{{- end -}}
{{- end -}}

{{- /*
(dict "ctx" $ "className" <the chart's own override, or "">) -> the IngressClass: the override, else
global.ingressClass.
*/ -}}
{{- define "homeci-lib.ingressClass" -}}
{{- include "homeci-lib.args" (list "homeci-lib.ingressClass" . (dict "ctx" "context" "className" "string?") `(dict "ctx" $ "className" .Values.ingressClass.name)`) -}}
{{- $g := .ctx.Values.global | default dict -}}
{{- .className | default $g.ingressClass | required "global.ingressClass is empty: set it to the IngressClass of your ingress controller, such as homeci" -}}
{{- end -}}
