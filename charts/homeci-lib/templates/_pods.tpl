{{- /* Pod-level pieces every workload shares. */ -}}

{{- /*
Pod securityContext: (dict "uid" .Values.x.uid ["fsGroup" true]). Runs as user and group <uid>
(runAsNonRoot unless uid is 0) with the RuntimeDefault seccomp profile; with fsGroup, the pod's volumes
belong to group <uid> (re-owned only when their root directory's owner differs).
*/ -}}
{{- define "homeci-lib.podSecurityContext" -}}
{{- include "homeci-lib.args" (list "homeci-lib.podSecurityContext" . (dict "uid" "number" "fsGroup" "bool?") `(dict "uid" .Values.uid ["fsGroup" true])`) -}}
{{- $uid := int64 .uid -}}
runAsNonRoot: {{ ne $uid 0 }}
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
{{- if .fsGroup }}
fsGroup: {{ $uid }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- /*
Container securityContext: (dict "uid" .Values.x.uid ["readOnlyRootFilesystem" <bool, default true>]).
Restricted Pod Security: user and group <uid>, no privilege escalation, every capability dropped,
RuntimeDefault seccomp.
*/ -}}
{{- define "homeci-lib.containerSecurityContext" -}}
{{- include "homeci-lib.args" (list "homeci-lib.containerSecurityContext" . (dict "uid" "number" "readOnlyRootFilesystem" "bool?") `(dict "uid" .Values.uid ["readOnlyRootFilesystem" false])`) -}}
{{- $uid := int64 .uid -}}
runAsNonRoot: {{ ne $uid 0 }}
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ ternary .readOnlyRootFilesystem true (hasKey . "readOnlyRootFilesystem") }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- /*
(dict "ctx" $ "persistence" .Values.x.persistence) -> its storageClass, else global.storageClass; ""
means the cluster's default class (leave storageClassName out).
*/ -}}
{{- define "homeci-lib.storageClass" -}}
{{- include "homeci-lib.args" (list "homeci-lib.storageClass" . (dict "ctx" "context" "persistence" "map?") `(dict "ctx" $ "persistence" .Values.persistence)`) -}}
{{- $g := .ctx.Values.global | default dict -}}
{{- (.persistence | default dict).storageClass | default $g.storageClass | default "" -}}
{{- end -}}

{{- /* $ -> "true" when global.networkPolicy.enabled or the chart's own networkPolicy.enabled is on. */ -}}
{{- define "homeci-lib.networkPolicy" -}}
{{- include "homeci-lib.args" (list "homeci-lib.networkPolicy" . "context" `(include "homeci-lib.networkPolicy" $)`) -}}
{{- $own := .Values.networkPolicy | default dict -}}
{{- if or $own.enabled (dig "networkPolicy" "enabled" false (.Values.global | default dict)) -}}true{{- end -}}
{{- end -}}

{{- /*
(dict "ctx" $ "hostDir" <node directory>) -> <hostDir>/<namespace>.<release>: the node directory holding
this release's CA for pipeline steps (the umbrella's node-trust DaemonSet writes ca.crt there, the Drone
runner mounts it into every step).
*/ -}}
{{- define "homeci-lib.nodeCADir" -}}
{{- include "homeci-lib.args" (list "homeci-lib.nodeCADir" . (dict "ctx" "context" "hostDir" "string") `(dict "ctx" $ "hostDir" .Values.nodeTrust.hostDir)`) -}}
{{- printf "%s/%s.%s" (trimSuffix "/" (toString .hostDir)) .ctx.Release.Namespace .ctx.Release.Name -}}
{{- end -}}

{{- /*
$ -> the NetworkPolicy `from` peer of the ingress controller (one list item, indent it where used):
global.networkPolicy.ingressPeer when its namespace is set (e.g. k3s's Traefik: kube-system with
its pod labels), else the bundled Traefik of this release: pods with its selector labels in the
release namespace only. A namespace is matched by its immutable `kubernetes.io/metadata.name` label,
so a pod elsewhere that copies Traefik's labels is not let in.
*/ -}}
{{- define "homeci-lib.ingressPeer" -}}
{{- include "homeci-lib.args" (list "homeci-lib.ingressPeer" . "context" `(include "homeci-lib.ingressPeer" $)`) -}}
{{- $peer := dig "networkPolicy" "ingressPeer" dict (.Values.global | default dict) -}}
{{- if $peer.namespace -}}
{{- if not $peer.podLabels -}}
{{- fail "global.networkPolicy.ingressPeer.podLabels is empty but ingressPeer.namespace is set: give the labels of your ingress controller's pods (k3s Traefik: app.kubernetes.io/name: traefik)" -}}
{{- end }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ $peer.namespace | quote }}
  podSelector:
    matchLabels:
      {{- toYaml $peer.podLabels | nindent 6 }}
{{- else }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Release.Namespace | quote }}
  podSelector:
    matchLabels:
      {{- include "homeci-lib.selectorLabels" (dict "ctx" . "name" "traefik" "component" "traefik") | nindent 6 }}
{{- end }}
{{- end -}}

{{- /*
(dict "ctx" $ "components" (list "git" "ci-server" ...)) -> a NetworkPolicy peer (one list item, indent it
where used): the pods of this release, in the policy's namespace, whose app.kubernetes.io/component is one
of components — the labels every homeci chart gives its pods (homeci-lib.selectorLabels). Only the
components homeci has are accepted, so a typo cannot leave a policy selecting nothing.
*/ -}}
{{- define "homeci-lib.podPeer" -}}
{{- include "homeci-lib.args" (list "homeci-lib.podPeer" . (dict "ctx" "context" "components" "list") `(dict "ctx" $ "components" (list "git" "ci-server"))`) -}}
{{- $known := list "ci-bootstrap" "ci-runner" "ci-server" "git" "registry" "registry-gc" "traefik" -}}
{{- if not .components -}}
{{- fail (printf "homeci-lib.podPeer needs at least one component: pass one or more of %s" (join ", " $known)) -}}
{{- end -}}
{{- range .components -}}
{{- if not (has . $known) -}}
{{- fail (printf "homeci-lib.podPeer got component %q, which no homeci pod has: use one of %s" (toString .) (join ", " $known)) -}}
{{- end -}}
{{- end }}
- podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ .ctx.Release.Name }}
      {{- if eq (len .components) 1 }}
      app.kubernetes.io/component: {{ first .components }}
      {{- else }}
    matchExpressions:
      - {key: app.kubernetes.io/component, operator: In, values: [{{ join ", " .components }}]}
      {{- end }}
{{- end -}}
