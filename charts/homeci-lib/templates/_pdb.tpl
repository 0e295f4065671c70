{{- /*
(dict "ctx" $ "pdb" <the component's podDisruptionBudget values> "component" <fullname suffix, e.g. "gogs">
      "labels" <the selectorLabels arguments of the workload>)
-> a policy/v1 PodDisruptionBudget selecting exactly the workload's pods, or nothing when disabled.
"labels" must be the very dict the workload passes to homeci-lib.selectorLabels (ctx included), so the
budget and the Deployment can never select different pods. Only maxUnavailable: with one replica it is the
field that says whether a drain may evict the pod (minAvailable would say the same thing backwards).
*/ -}}
{{- define "homeci-lib.podDisruptionBudget" -}}
{{- include "homeci-lib.args" (list "homeci-lib.podDisruptionBudget" . (dict "ctx" "context" "pdb" "map" "component" "string" "labels" "map") `(dict "ctx" $ "pdb" .Values.podDisruptionBudget "component" "gogs" "labels" (dict "ctx" $ "component" "gogs"))`) -}}
{{- if .pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "homeci-lib.fullname" (dict "ctx" .ctx "component" .component) }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "homeci-lib.labels" .labels | nindent 4 }}
spec:
  maxUnavailable: {{ .pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "homeci-lib.selectorLabels" .labels | trim | nindent 6 }}
{{- end }}
{{- end -}}
