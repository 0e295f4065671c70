{{- /* Names: every object is <release>-registry[-suffix] (cross-chart contract). */ -}}
{{- define "homeci-registry.fullname" -}}{{ .Release.Name }}-registry{{- end -}}
{{- define "homeci-registry.authSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-registry-auth" .Release.Name) -}}
{{- end -}}
{{- define "homeci-registry.configSecretName" -}}{{ .Release.Name }}-registry-config{{- end -}}
{{- define "homeci-registry.claimName" -}}
{{- .Values.persistence.existingClaim | default (include "homeci-registry.fullname" .) -}}
{{- end -}}

{{- define "homeci-registry.global" -}}{{- toYaml (.Values.global | default dict) -}}{{- end -}}

{{- /* true inside the umbrella (global.tls.mode set), empty standalone. */ -}}
{{- define "homeci-registry.umbrella" -}}
{{- if and .Values.global .Values.global.tls .Values.global.tls.mode -}}true{{- end -}}
{{- end -}}

{{- /* Public host: host, else <global.hosts.registry>.<global.domain>, else registry.localhost. */ -}}
{{- define "homeci-registry.host" -}}
{{- $g := .Values.global | default dict -}}
{{- if .Values.host -}}
{{- .Values.host -}}
{{- else if $g.domain -}}
{{- $domain := toString $g.domain -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}$" $domain -}}
{{- fail (printf "global.domain %q is an IP address, but hosts are <label>.<domain> under one *.<domain> certificate: use a DNS name that resolves to the node, such as the wildcard-DNS name %s.sslip.io or a local domain like home.lan" $domain (replace "." "-" $domain)) -}}
{{- else if regexMatch "(^|[.])[0-9]+$" $domain -}}
{{- fail (printf "global.domain %q ends in an all-numeric label, which no DNS name may (it reads as an IP address): use a name such as home.lan or homeci.localhost" $domain) -}}
{{- end -}}
{{- printf "%s.%s" ((($g.hosts | default dict).registry) | default "registry") $domain -}}
{{- else -}}
registry.localhost
{{- end -}}
{{- end -}}

{{- define "homeci-registry.ingressClassName" -}}
{{- $g := .Values.global | default dict -}}
{{- .Values.ingress.className | default $g.ingressClass | default "homeci" -}}
{{- end -}}

{{- define "homeci-registry.tlsSecret" -}}
{{- if include "homeci-registry.umbrella" . -}}
{{- .Release.Name }}-tls
{{- else -}}
{{- .Values.ingress.tlsSecret -}}
{{- end -}}
{{- end -}}

{{- define "homeci-registry.selectorLabels" -}}
app.kubernetes.io/name: registry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: registry
{{- end -}}

{{- define "homeci-registry.labels" -}}
{{ include "homeci-registry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- /* Image reference <registry>/<repository>:<tag>[@<digest>] (global.imageRegistry replaces image.registry);
a moving tag fails in one sentence naming the key. */ -}}
{{- define "homeci-registry.image" -}}
{{- $g := .Values.global | default dict -}}
{{- $tag := toString .Values.image.tag -}}
{{- $key := printf "%s%s" (include "homeci-registry.valuesPrefix" .) "image" -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" $key $tag $key) -}}
{{- end -}}
{{- $ref := printf "%s/%s:%s" ($g.imageRegistry | default .Values.image.registry) .Values.image.repository $tag -}}
{{- with .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* Dotted path of this chart's values in the user's install: "registry." inside the umbrella, "" alone. */ -}}
{{- define "homeci-registry.valuesPrefix" -}}
{{- if contains "/charts/" .Template.BasePath -}}{{ .Chart.Name }}.{{- end -}}
{{- end -}}

{{- define "homeci-registry.networkPolicy" -}}
{{- $g := .Values.global | default dict -}}
{{- if or .Values.networkPolicy.enabled (and $g.networkPolicy $g.networkPolicy.enabled) -}}true{{- end -}}
{{- end -}}

{{- define "homeci-registry.imagePullSecrets" -}}
{{- $g := .Values.global | default dict -}}
{{- with $g.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ kindIs "string" . | ternary . (get (kindIs "map" . | ternary . dict) "name") }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* Pod security context shared by the registry and the garbage collector. uid/gid 65532 (the
"nonroot" id of distroless-style images; >= 10000 keeps clear of host users): the registry is one
static program that needs no passwd entry, and fsGroup makes its storage volume writable. */ -}}
{{- define "homeci-registry.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "homeci-registry.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- /* Environment shared by the registry and the garbage collector: secrets never in the config text. */ -}}
{{- define "homeci-registry.env" -}}
- name: OTEL_TRACES_EXPORTER
  # Traces would otherwise be sent to https://localhost:4318 and fail noisily.
  value: none
{{- if .Values.httpSecret.existingSecret }}
- name: REGISTRY_HTTP_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.httpSecret.existingSecret }}
      key: {{ .Values.httpSecret.key }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.existingSecret }}
- name: REGISTRY_STORAGE_S3_ACCESSKEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret }}
      key: accessKey
- name: REGISTRY_STORAGE_S3_SECRETKEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret }}
      key: secretKey
{{- end }}
{{- if and .Values.proxy.enabled .Values.proxy.existingSecret }}
- name: REGISTRY_PROXY_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.proxy.existingSecret }}
      key: username
- name: REGISTRY_PROXY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.proxy.existingSecret }}
      key: password
{{- end }}
{{- end -}}

{{- /* Volumes shared by the registry and the garbage collector. */ -}}
{{- define "homeci-registry.volumes" -}}
- name: config
  secret:
    secretName: {{ include "homeci-registry.configSecretName" . }}
    items:
      - key: config.yml
        path: config.yml
- name: auth
  secret:
    secretName: {{ include "homeci-registry.authSecretName" . }}
    items:
      - key: htpasswd
        path: htpasswd
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if eq .Values.storage.type "filesystem" }}
- name: data
  {{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "homeci-registry.claimName" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- if include "homeci-registry.umbrella" . }}
- name: ca
  configMap:
    name: {{ .Release.Name }}-ca
{{- end }}
{{- end -}}

{{- define "homeci-registry.volumeMounts" -}}
- name: config
  mountPath: /etc/distribution
  readOnly: true
- name: auth
  mountPath: /auth
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if eq .Values.storage.type "filesystem" }}
- name: data
  mountPath: /var/lib/registry
{{- end }}
{{- if include "homeci-registry.umbrella" . }}
# The shared CA (S3-compatible endpoints or upstreams signed by it); Go loads every file here.
- name: ca
  mountPath: /etc/ssl/certs/homeci-ca.crt
  subPath: ca.crt
  readOnly: true
{{- end }}
{{- end -}}

{{- /* Everything config.yml and the mounted credentials depend on, except generated secrets. */ -}}
{{- define "homeci-registry.configInputs" -}}
{{- toYaml (dict "host" (include "homeci-registry.host" .) "storage" .Values.storage "proxy" .Values.proxy
      "maintenance" .Values.maintenance "httpSecret" .Values.httpSecret "logLevel" .Values.logLevel
      "auth" .Values.auth) -}}
{{- end -}}
