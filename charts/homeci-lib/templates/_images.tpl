{{- /*
Image reference [<registry>/]<repository>:<tag>[@<digest>], one shape for every image:
  (dict "ctx" $ "image" .Values.x.image "key" "x.image")
image is {registry, repository, tag, digest[, pullPolicy]}; global.imageRegistry, when set, replaces
image.registry (a mirror keeps the repository path). A moving tag fails in one sentence naming the key
as the user's values know it (with the subchart's section inside the umbrella).
*/ -}}
{{- define "homeci-lib.image" -}}
{{- include "homeci-lib.args" (list "homeci-lib.image" . (dict "ctx" "context" "image" "map" "key" "string") `(dict "ctx" $ "image" .Values.image "key" "image")`) -}}
{{- $g := .ctx.Values.global | default dict -}}
{{- $key := printf "%s%s" (include "homeci-lib.valuesPrefix" .ctx) .key -}}
{{- $tag := toString .image.tag -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" $key $tag $key) -}}
{{- end -}}
{{- $ref := printf "%s:%s" .image.repository $tag -}}
{{- with $g.imageRegistry | default .image.registry | default "" | toString | trimSuffix "/" -}}
{{- $ref = printf "%s/%s" . $ref -}}
{{- end -}}
{{- with .image.digest -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /*
$ -> an `imagePullSecrets:` block from global.imagePullSecrets (names or {name: ...} objects), nothing
when there are none. Include it with nindent at the pod spec's indentation.
*/ -}}
{{- define "homeci-lib.imagePullSecrets" -}}
{{- include "homeci-lib.args" (list "homeci-lib.imagePullSecrets" . "context" `(include "homeci-lib.imagePullSecrets" $)`) -}}
{{- with (.Values.global | default dict).imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name | quote }}{{ else }}{{ . | quote }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}
