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

{{- /* Image reference <registry>/<repository>:<tag>[@<digest>] (global.imageRegistry replaces image.registry);
a moving tag fails in one sentence naming the key. */ -}}
{{- define "homeci-traefik.image" -}}
{{- $global := .Values.global | default dict -}}
{{- $tag := toString .Values.image.tag -}}
{{- $key := printf "%s%s" (include "homeci-traefik.valuesPrefix" .) "image" -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" $key $tag $key) -}}
{{- end -}}
{{- $ref := printf "%s/%s:%s" ($global.imageRegistry | default .Values.image.registry) .Values.image.repository $tag -}}
{{- with .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* Dotted path of this chart's values in the user's install: "traefik." inside the umbrella, "" alone. */ -}}
{{- define "homeci-traefik.valuesPrefix" -}}
{{- if contains "/charts/" .Template.BasePath -}}{{ .Chart.Name }}.{{- end -}}
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
