{{- /*
Object names: the cross-chart contract. Every object is <release>-<component>[-<suffix>], never the
chart's fullname, so each chart can name the objects of another without reading its values.
*/ -}}

{{- /*
(dict "ctx" $ "component" "drone-runner" ["release" <name>]) -> <release>-drone-runner, at most 63
characters. release defaults to this release (drone-pipelines passes the stack's release).
*/ -}}
{{- define "homeci-lib.fullname" -}}
{{- include "homeci-lib.args" (list "homeci-lib.fullname" . (dict "ctx" "context" "component" "string" "release" "string?") `(dict "ctx" $ "component" "gogs" ["release" <release>])`) -}}
{{- printf "%s-%s" (.release | default .ctx.Release.Name) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /*
(dict "ctx" $ "component" "drone" ["release" <name>]) -> <release>-drone.<namespace>.svc: the
in-cluster name of a component's Service in the release namespace.
*/ -}}
{{- define "homeci-lib.serviceHost" -}}
{{- include "homeci-lib.args" (list "homeci-lib.serviceHost" . (dict "ctx" "context" "component" "string" "release" "string?") `(dict "ctx" $ "component" "drone" ["release" <release>])`) -}}
{{- printf "%s.%s.svc" (include "homeci-lib.fullname" .) .ctx.Release.Namespace -}}
{{- end -}}

{{- /*
$ -> <release>-ca: the ConfigMap publishing the CA certificate (keys ca.crt and bundle.crt), written by the
umbrella's certificate program in the release namespace and the build namespace.
*/ -}}
{{- define "homeci-lib.caConfigMap" -}}
{{- include "homeci-lib.args" (list "homeci-lib.caConfigMap" . "context" `(include "homeci-lib.caConfigMap" $)`) -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "ca") -}}
{{- end -}}

{{- /* $ -> <release>-builds: the Drone runner's build namespace (step pods run there). */ -}}
{{- define "homeci-lib.buildNamespace" -}}
{{- include "homeci-lib.args" (list "homeci-lib.buildNamespace" . "context" `(include "homeci-lib.buildNamespace" $)`) -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "builds") -}}
{{- end -}}

{{- /* $ -> <release>-tls: the umbrella's serving certificate Secret for every public host. */ -}}
{{- define "homeci-lib.tlsSecret" -}}
{{- include "homeci-lib.args" (list "homeci-lib.tlsSecret" . "context" `(include "homeci-lib.tlsSecret" $)`) -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "tls") -}}
{{- end -}}

{{- /*
(dict "ctx" $ "alone" <the chart's own Secret setting>) -> the TLS Secret of the public hosts:
<release>-tls inside the umbrella, the chart's own setting when it is installed alone ("" = none).
*/ -}}
{{- define "homeci-lib.servingSecret" -}}
{{- include "homeci-lib.args" (list "homeci-lib.servingSecret" . (dict "ctx" "context" "alone" "string?") `(dict "ctx" $ "alone" .Values.tls.existingSecret)`) -}}
{{- if include "homeci-lib.umbrella" .ctx -}}
{{- include "homeci-lib.tlsSecret" .ctx -}}
{{- else -}}
{{- .alone | default "" -}}
{{- end -}}
{{- end -}}

{{- /*
(dict "ctx" $ "existingSecret" <the chart's own override, or "">) -> the admin Secret (keys username,
password, email): the override, else global.admin.existingSecret, else <release>-admin.
*/ -}}
{{- define "homeci-lib.adminSecret" -}}
{{- include "homeci-lib.args" (list "homeci-lib.adminSecret" . (dict "ctx" "context" "existingSecret" "string?") `(dict "ctx" $ "existingSecret" .Values.admin.existingSecret)`) -}}
{{- $g := .ctx.Values.global | default dict -}}
{{- .existingSecret | default (dig "admin" "existingSecret" "" $g) | default (include "homeci-lib.fullname" (dict "ctx" .ctx "component" "admin")) -}}
{{- end -}}

{{- /*
$ -> "true" inside the umbrella (global.tls.mode is set, so ConfigMap <release>-ca and Secret
<release>-tls exist), "" when the chart is installed alone.
*/ -}}
{{- define "homeci-lib.umbrella" -}}
{{- include "homeci-lib.args" (list "homeci-lib.umbrella" . "context" `(include "homeci-lib.umbrella" $)`) -}}
{{- if dig "tls" "mode" "" (.Values.global | default dict) -}}true{{- end -}}
{{- end -}}

{{- /*
$ -> the dotted path of this chart's values in the user's install: "drone." when the chart renders
inside the umbrella, "" alone. Error sentences put it before the keys they name.
*/ -}}
{{- define "homeci-lib.valuesPrefix" -}}
{{- include "homeci-lib.args" (list "homeci-lib.valuesPrefix" . "context" `(include "homeci-lib.valuesPrefix" $)`) -}}
{{- if contains "/charts/" .Template.BasePath -}}{{ .Chart.Name }}.{{- end -}}
{{- end -}}

{{- /*
$ -> "true" when the chart renders against a real cluster (install, upgrade, --dry-run=server: lookup of
the always-present kube-system Namespace answers), "" offline (helm template, --dry-run=client).
*/ -}}
{{- define "homeci-lib.online" -}}
{{- include "homeci-lib.args" (list "homeci-lib.online" . "context" `(include "homeci-lib.online" $)`) -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}true{{- end -}}
{{- end -}}
