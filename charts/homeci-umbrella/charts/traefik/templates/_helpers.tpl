{{- /*
Traefik's own rules. Names, labels, image, pull secrets, IngressClass, security contexts and the
NetworkPolicy switch come from the homeci-lib library chart (charts/homeci-lib).
*/ -}}

{{- /* $ -> the default certificate Secret: <release>-tls in the umbrella, tls.defaultCertificateSecret alone. */ -}}
{{- define "homeci-traefik.defaultCertSecret" -}}
{{- if include "homeci-lib.umbrella" . -}}
{{- include "homeci-lib.tlsSecret" . -}}
{{- else -}}
{{- .Values.tls.defaultCertificateSecret -}}
{{- end -}}
{{- end -}}
