{{- /*
(dict "ctx" $ "pdb" <the component's podDisruptionBudget values> "key" <their path in the chart's values>
      "component" <fullname suffix, e.g. "gogs"> "labels" <the selectorLabels arguments of the workload>)
-> a policy/v1 PodDisruptionBudget selecting exactly the workload's pods, or nothing when disabled.
"labels" must be the very dict the workload passes to homeci-lib.selectorLabels (ctx included), so the
budget and the Deployment can never select different pods.
*/ -}}
{{- define "homeci-lib.podDisruptionBudget" -}}
{{- if not (and .ctx .pdb .key .component .labels) -}}
{{- fail "homeci-lib.podDisruptionBudget needs \"ctx\", \"pdb\", \"key\", \"component\" and \"labels\"" -}}
{{- end -}}
{{- $key := printf "%s%s" (include "homeci-lib.valuesPrefix" .ctx) .key -}}
{{- if .pdb.enabled }}
{{- if and (kindIs "invalid" .pdb.minAvailable) (kindIs "invalid" .pdb.maxUnavailable) }}
{{- fail (printf "%s.maxUnavailable and %s.minAvailable are both null: a PodDisruptionBudget needs one of them (e.g. maxUnavailable: 1)" $key $key) }}
{{- end }}
{{- if and (hasKey .pdb "minAvailable") (not (kindIs "invalid" .pdb.minAvailable)) (not (kindIs "invalid" .pdb.maxUnavailable)) }}
{{- fail (printf "%s.minAvailable and %s.maxUnavailable are both set: a PodDisruptionBudget takes one of them; set the other to null" $key $key) }}
{{- end }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "homeci-lib.fullname" (dict "ctx" .ctx "component" .component) }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "homeci-lib.labels" .labels | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .pdb.maxUnavailable) }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "homeci-lib.selectorLabels" .labels | trim | nindent 6 }}
{{- end }}
{{- end -}}
