{{- /*
The certificate program (files/certs.py) and what runs it: no key material is ever rendered. It keeps
the CA Secret, the serving certificate Secret <release>-tls and the public CA ConfigMap <release>-ca
(in every namespace of homeci.certs.namespaces) in the cluster; see certs-hook.yaml (before install,
upgrade and rollback) and certs-renewal.yaml (the renewal CronJob, and the publishing Job after
install, upgrade and rollback).
*/ -}}

{{- /* $ -> <release>-certs: the name of the renewal objects (the hook's carry the suffix -hook). */ -}}
{{- define "homeci.certs.name" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "certs") -}}
{{- end -}}

{{- /*
$ -> the namespaces ConfigMap <release>-ca is published in, as a list: the release namespace, and the
build namespace <release>-builds when the Drone runner is deployed (step pods mount it there).
*/ -}}
{{- define "homeci.certs.namespaces" -}}
{{- $list := list .Release.Namespace -}}
{{- $drone := .Values.drone | default dict -}}
{{- if and $drone.enabled (dig "runner" "enabled" true $drone) -}}
{{- $list = append $list (include "homeci-lib.buildNamespace" .) -}}
{{- end -}}
{{- toJson $list -}}
{{- end -}}

{{- /* (dict "ctx" $ "component" "certs" ["hook" <annotations>]) -> metadata labels and hook annotations. */ -}}
{{- define "homeci.certs.meta" -}}
labels:
  {{- include "homeci-lib.labels" (dict "ctx" .ctx "name" "homeci" "component" "certs") | nindent 2 }}
{{- with .hook }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- /*
(dict "ctx" $ "name" <ServiceAccount, Role and RoleBinding name> "namespaces" <list> ["hook" <annotations>])
-> the program's ServiceAccount and, in each namespace, a Role and RoleBinding for exactly the objects it
reads and writes there: in the release namespace the CA Secret (only read in existingSecret mode), the
serving Secret, ConfigMap <release>-ca and Events; elsewhere only ConfigMap <release>-ca. `create` cannot
be limited to names (the object does not exist yet), so it is granted for the kinds the program creates.
*/ -}}
{{- define "homeci.certs.rbac" -}}
{{- $ := .ctx -}}
{{- $name := .name -}}
{{- $hook := .hook -}}
{{- $ns := $.Release.Namespace -}}
{{- $cm := include "homeci-lib.caConfigMap" $ -}}
{{- $caSecret := include "homeci.caSecretName" $ -}}
{{- $tls := include "homeci-lib.tlsSecret" $ -}}
{{- $generate := eq $.Values.global.tls.mode "generate" -}}
{{- $createsSecrets := or $generate $.Values.certificates.createServingSecret -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  {{- include "homeci.certs.meta" (dict "ctx" $ "hook" $hook) | nindent 2 }}
automountServiceAccountToken: false
{{- range $target := .namespaces }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ $target }}
  {{- include "homeci.certs.meta" (dict "ctx" $ "hook" $hook) | nindent 2 }}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    resourceNames: [{{ $cm }}]
    verbs: [get, update]
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [create]
  {{- if eq $target $ns }}
  # The CA Secret: written only when the chart generates it (your own CA is only read).
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: [{{ $caSecret }}]
    verbs: {{ ternary "[get, update]" "[get]" $generate }}
  # The serving certificate: only read when you create it yourself (certificates.createServingSecret=false).
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: [{{ $tls }}]
    verbs: {{ ternary "[get, update]" "[get]" (and $.Values.certificates.createServingSecret true) }}
  {{- if $createsSecrets }}
  - apiGroups: [""]
    resources: [secrets]
    verbs: [create]
  {{- end }}
  - apiGroups: [""]
    resources: [events]
    verbs: [create]
  {{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ $target }}
  {{- include "homeci.certs.meta" (dict "ctx" $ "hook" $hook) | nindent 2 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $ns }}
{{- end }}
{{- end -}}

{{- /*
(dict "ctx" $ "name" <name> ["hook" <annotations>]) -> ConfigMap <name> with the program, and (with
global.networkPolicy.enabled) the NetworkPolicy that lets the program's pods reach the API server.
*/ -}}
{{- define "homeci.certs.support" -}}
{{- $ := .ctx -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .name }}
  namespace: {{ $.Release.Namespace }}
  {{- include "homeci.certs.meta" (dict "ctx" $ "hook" .hook) | nindent 2 }}
data:
  certs.py: |
    {{- $.Files.Get "files/certs.py" | nindent 4 }}
{{- if include "homeci-lib.networkPolicy" $ }}
---
# The certificate program talks only to the Kubernetes API server (443 or 6443, wherever it is).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ $.Release.Namespace }}
  {{- include "homeci.certs.meta" (dict "ctx" $ "hook" .hook) | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "homeci-lib.selectorLabels" (dict "ctx" $ "name" "homeci" "component" "certs") | nindent 6 }}
  policyTypes: [Ingress, Egress]
  egress:
    - ports:
        - {port: 443, protocol: TCP}
        - {port: 6443, protocol: TCP}
{{- end }}
{{- end -}}

{{- /*
(dict "ctx" $ "serviceAccount" <name> "configMap" <name> "namespaces" <list>) -> the pod spec every run
of the program shares (hook Jobs, CronJob): restricted Pod Security, read-only root filesystem, the
ServiceAccount token (it uses the API), the script from configMap and its settings as plain
environment variables (none secret).
*/ -}}
{{- define "homeci.certs.podSpec" -}}
{{- $ := .ctx -}}
{{- $c := $.Values.certificates -}}
{{- $job := $c.job -}}
{{- $ips := $c.extraIpAddresses | default list | uniq | sortAlpha -}}
restartPolicy: Never
serviceAccountName: {{ .serviceAccount }}
# The program reads and writes its Secrets and ConfigMaps through the API (the Role names them).
automountServiceAccountToken: true
enableServiceLinks: false
{{- include "homeci-lib.imagePullSecrets" $ }}
securityContext:
  {{- include "homeci-lib.podSecurityContext" (dict "uid" $job.uid) | nindent 2 }}
containers:
  - name: certs
    image: {{ include "homeci-lib.image" (dict "ctx" $ "image" $job.image "key" "certificates.job.image") }}
    imagePullPolicy: {{ $job.image.pullPolicy }}
    command: ["python3", "-u", "/opt/homeci/certs.py"]
    env:
      - name: NAMESPACE
        value: {{ $.Release.Namespace | quote }}
      - name: RELEASE
        value: {{ $.Release.Name | quote }}
      - name: TLS_MODE
        value: {{ $.Values.global.tls.mode | quote }}
      - name: CA_SECRET
        value: {{ include "homeci.caSecretName" $ | quote }}
      - name: CA_CONFIGMAP
        value: {{ include "homeci-lib.caConfigMap" $ | quote }}
      - name: CA_CONFIGMAP_NAMESPACES
        value: {{ join "," .namespaces | quote }}
      - name: TLS_SECRET
        value: {{ include "homeci-lib.tlsSecret" $ | quote }}
      - name: CREATE_SERVING_SECRET
        value: {{ $c.createServingSecret | quote }}
      - name: DOMAIN
        value: {{ include "homeci-lib.domain" $ | quote }}
      - name: DNS_NAMES
        value: {{ include "homeci.servingDnsNames" $ | quote }}
      - name: IP_ADDRESSES
        value: {{ join "," $ips | quote }}
      - name: CA_COMMON_NAME
        value: {{ printf "%s CA (%s)" $.Release.Name (include "homeci-lib.domain" $) | trunc 64 | quote }}
      - name: CA_VALIDITY_DAYS
        value: {{ $c.caValidityDays | quote }}
      - name: SERVING_VALIDITY_DAYS
        value: {{ $c.servingValidityDays | quote }}
      - name: RENEW_BEFORE_DAYS
        value: {{ $c.renewBeforeDays | quote }}
      {{- if and (eq $.Values.global.tls.mode "existingSecret") $c.caCertificate }}
      # Public: used only when your CA Secret is not in the cluster.
      - name: CA_CERTIFICATE
        value: {{ trim $c.caCertificate | quote }}
      {{- end }}
      - name: PYTHONDONTWRITEBYTECODE
        value: "1"
    resources:
      {{- toYaml $job.resources | nindent 6 }}
    securityContext:
      {{- include "homeci-lib.containerSecurityContext" (dict "uid" $job.uid) | nindent 6 }}
    volumeMounts:
      - name: script
        mountPath: /opt/homeci
        readOnly: true
volumes:
  - name: script
    configMap:
      name: {{ .configMap }}
{{- end -}}
