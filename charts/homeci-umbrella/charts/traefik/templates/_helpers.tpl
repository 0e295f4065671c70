{{- /*
Traefik's own rules. Names, labels, image, pull secrets, IngressClass, the default certificate
Secret, security contexts and the NetworkPolicy switch come from the homeci-lib library chart
(charts/homeci-lib).
*/ -}}

{{- /*
$ -> the namespaces Traefik watches, comma-separated, sorted, each once: the release namespace, every
global.appNamespaces[].name and watchNamespaces.
*/ -}}
{{- define "homeci-traefik.watchedNamespaces" -}}
{{- $names := list .Release.Namespace -}}
{{- range (.Values.global | default dict).appNamespaces | default list -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- range .Values.watchNamespaces -}}
{{- $names = append $names . -}}
{{- end -}}
{{- $names | uniq | sortAlpha | join "," -}}
{{- end -}}
