{{- /*
The registry's own rules. Names, labels, image, pull secrets, IngressClass, storage class, security
contexts and the NetworkPolicy switch come from the homeci-lib library chart (charts/homeci-lib).
*/ -}}

{{- /* Names: every object is <release>-registry[-suffix] (cross-chart contract). */ -}}
{{- define "homeci-registry.authSecretName" -}}
{{- .Values.auth.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "component" "registry-auth")) -}}
{{- end -}}
{{- define "homeci-registry.configSecretName" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "registry-config") -}}
{{- end -}}
{{- define "homeci-registry.claimName" -}}
{{- .Values.persistence.existingClaim | default (include "homeci-lib.fullname" (dict "ctx" . "component" "registry")) -}}
{{- end -}}

{{- /*
(list <htpasswd line> <user> <password>) -> sha256:<hex> of "<line>\n<user>:<password>": what the line
of Secret <release>-registry-auth was made from (annotation homeci.dev/htpasswd-of; see secret-auth.yaml).
*/ -}}
{{- define "homeci-registry.htpasswdOf" -}}
{{- printf "%s\n%s:%s" (index . 0) (index . 1) (index . 2) | sha256sum | printf "sha256:%s" -}}
{{- end -}}

{{- /* $ -> the public host: host, else <global.hosts.registry>.<global.domain> (homeci-lib.registryHost). */ -}}
{{- define "homeci-registry.host" -}}
{{- include "homeci-lib.registryHost" (dict "ctx" . "host" .Values.host) -}}
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
      name: {{ .Values.httpSecret.existingSecret | quote }}
      key: {{ .Values.httpSecret.key | quote }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.existingSecret }}
- name: REGISTRY_STORAGE_S3_ACCESSKEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret | quote }}
      key: accessKey
- name: REGISTRY_STORAGE_S3_SECRETKEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.s3.existingSecret | quote }}
      key: secretKey
{{- end }}
{{- if and .Values.proxy.enabled .Values.proxy.existingSecret }}
- name: REGISTRY_PROXY_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.proxy.existingSecret | quote }}
      key: username
- name: REGISTRY_PROXY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.proxy.existingSecret | quote }}
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
    secretName: {{ include "homeci-registry.authSecretName" . | quote }}
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
    claimName: {{ include "homeci-registry.claimName" . | quote }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- if include "homeci-lib.umbrella" . }}
- name: ca
  configMap:
    name: {{ include "homeci-lib.caConfigMap" . }}
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
{{- if include "homeci-lib.umbrella" . }}
# The shared CA (S3-compatible endpoints or upstreams signed by it); Go loads every file here.
- name: ca
  mountPath: /etc/ssl/certs/homeci-ca.crt
  subPath: ca.crt
  readOnly: true
{{- end }}
{{- end -}}

{{- /*
$ -> JSON (dict "name" <Secret> ...) of the http.secret's Secret for homeci-lib.keptSecretData and
homeci-lib.secretsChecksum: generated into <release>-registry-config (key http-secret, 48 characters)
unless httpSecret.existingSecret.
*/ -}}
{{- define "homeci-registry.httpSecretEntry" -}}
{{- if .Values.httpSecret.existingSecret -}}
{{- dict "name" .Values.httpSecret.existingSecret "keys" (list .Values.httpSecret.key) | toJson -}}
{{- else -}}
{{- dict "name" (include "homeci-registry.configSecretName" .) "generate" (dict "http-secret" 48) | toJson -}}
{{- end -}}
{{- end -}}

{{- /*
$ -> the checksum/secrets pod annotation's value: the Secrets the registry reads only at start (http.secret,
the S3 and proxy credentials: environment or config.yml). Not the htpasswd: the registry re-reads that
file whenever it changes.
*/ -}}
{{- define "homeci-registry.secretsChecksum" -}}
{{- $entries := list (include "homeci-registry.httpSecretEntry" . | fromJson) -}}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.existingSecret -}}
{{- $entries = append $entries (dict "name" .Values.storage.s3.existingSecret "keys" (list "accessKey" "secretKey")) -}}
{{- end -}}
{{- if and .Values.proxy.enabled .Values.proxy.existingSecret -}}
{{- $entries = append $entries (dict "name" .Values.proxy.existingSecret "keys" (list "username" "password")) -}}
{{- end -}}
{{- include "homeci-lib.secretsChecksum" (dict "ctx" . "secrets" $entries) -}}
{{- end -}}

{{- /*
Everything config.yml depends on, except generated secrets (checksum/secrets covers those). Not auth: the
registry re-reads the htpasswd file, so a new user name or password needs no restart.
*/ -}}
{{- define "homeci-registry.configInputs" -}}
{{- toYaml (dict "host" (include "homeci-registry.host" .) "storage" .Values.storage "proxy" .Values.proxy
      "maintenance" .Values.maintenance "httpSecret" .Values.httpSecret "logLevel" .Values.logLevel) -}}
{{- end -}}
