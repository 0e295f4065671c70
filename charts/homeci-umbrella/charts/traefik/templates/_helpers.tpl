{{- /* Names: every object is <release>-traefik (cross-chart contract). */ -}}
{{- define "homeci-traefik.fullname" -}}{{ .Release.Name }}-traefik{{- end -}}

{{- /* true inside the umbrella (global.tls.mode set), empty standalone. */ -}}
{{- define "homeci-traefik.umbrella" -}}
{{- if and .Values.global .Values.global.tls .Values.global.tls.mode -}}true{{- end -}}
{{- end -}}

{{- define "homeci-traefik.selectorLabels" -}}
app.kubernetes.io/name: traefik
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: traefik
{{- end -}}

{{- define "homeci-traefik.labels" -}}
{{ include "homeci-traefik.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "homeci-traefik.image" -}}
{{- $global := .Values.global | default dict -}}
{{- printf "%s/%s:%s" ($global.imageRegistry | default .Values.image.registry) .Values.image.repository .Values.image.tag -}}
{{- end -}}

{{- define "homeci-traefik.ingressClassName" -}}
{{- $global := .Values.global | default dict -}}
{{- .Values.ingressClass.name | default $global.ingressClass | default "homeci" -}}
{{- end -}}

{{- /* Default certificate Secret: <release>-tls in the umbrella, tls.defaultCertificateSecret alone. */ -}}
{{- define "homeci-traefik.defaultCertSecret" -}}
{{- if include "homeci-traefik.umbrella" . -}}
{{- .Release.Name }}-tls
{{- else -}}
{{- .Values.tls.defaultCertificateSecret -}}
{{- end -}}
{{- end -}}

{{- define "homeci-traefik.networkPolicy" -}}
{{- $global := .Values.global | default dict -}}
{{- if or .Values.networkPolicy.enabled (and $global.networkPolicy $global.networkPolicy.enabled) -}}true{{- end -}}
{{- end -}}

{{- /* imagePullSecrets from global (names or {name: ...} objects). */ -}}
{{- define "homeci-traefik.imagePullSecrets" -}}
{{- $global := .Values.global | default dict -}}
{{- with $global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ kindIs "string" . | ternary . (get (kindIs "map" . | ternary . dict) "name") }}
{{- end }}
{{- end }}
{{- end -}}
