{{- /*
Secrets a chart generates once and keeps, and the checksums that roll a workload when a Secret it reads
only at start changes.

Why a memo: on the first install a generated value is random and the Secret does not exist yet, so a
Deployment cannot look it up. Both the Secret and the checksum therefore take the data from
homeci-lib.keptSecretData, which generates a missing key once per render and remembers it in .Release
(one map shared by the umbrella and every subchart during one render). The checksum of the install
and of the next same-values upgrade (which looks up the same data) are then equal: no restart.
*/ -}}

{{- /*
(dict "ctx" $ "name" <Secret> "generate" (dict <key> <length> ...)) -> JSON object <key> -> base64 value:
each key from the live Secret when it holds one, else randAlphaNum <length>, generated once per render.
Callers use `include ... | fromJson`.
*/ -}}
{{- define "homeci-lib.keptSecretData" -}}
{{- include "homeci-lib.args" (list "homeci-lib.keptSecretData" . (dict "ctx" "context" "name" "string" "generate" "map") `(dict "ctx" $ "name" <Secret> "generate" (dict <key> <length>))`) -}}
{{- if not .name -}}
{{- fail "homeci-lib.keptSecretData needs \"name\" (the Secret) and \"generate\" (key -> length)" -}}
{{- end -}}
{{- if not .generate -}}
{{- fail (printf "homeci-lib.keptSecretData for Secret %s needs \"generate\" (key -> length)" .name) -}}
{{- end -}}
{{- $memo := get .ctx.Release "homeciKeptSecrets" -}}
{{- if not $memo -}}
{{- $memo = dict -}}
{{- $_ := set .ctx.Release "homeciKeptSecrets" $memo -}}
{{- end -}}
{{- $id := printf "%s/%s" .ctx.Release.Namespace .name -}}
{{- if not (hasKey $memo $id) -}}
{{- $live := (lookup "v1" "Secret" .ctx.Release.Namespace .name) | default dict -}}
{{- $liveData := get $live "data" | default dict -}}
{{- $data := dict -}}
{{- range $key, $length := .generate -}}
{{- $_ := set $data $key ((get $liveData $key) | default (randAlphaNum (int $length) | b64enc)) -}}
{{- end -}}
{{- $_ := set $memo $id $data -}}
{{- end -}}
{{- get $memo $id | toJson -}}
{{- end -}}

{{- /*
(dict "ctx" $ "secrets" (list <entry> ...)) -> sha256 of what the listed Secrets hold, for a
`checksum/secrets` pod annotation on a workload that reads them only at start (environment, or files read
once). <entry> is (dict "name" <Secret> ["keys" (list <key> ...)] ["generate" (dict <key> <length> ...)]
["data" (dict <key> <base64 value> ...)]): with "generate", the Secret is one a chart generates
(homeci-lib.keptSecretData, same spec as the Secret's template); with "data", one a chart renders from
values (those keys are taken from "data", not looked up: the first install has nothing to look up);
otherwise the live Secret (the user's own: absent = nothing). "keys" limits the hash to the keys the
workload reads (all keys when omitted). Offline (helm template) a user's Secret cannot be
looked up and counts as absent, so GitOps renders stay byte-identical.
The hash lands in a pod template, which more people may read than the Secrets: list the Secret holding a
long random key (SECRET_KEY, http.secret, the RPC secret) with any user-chosen password, so the hash is no
offline test for a weak password (every homeci caller does).
*/ -}}
{{- define "homeci-lib.secretsChecksum" -}}
{{- include "homeci-lib.args" (list "homeci-lib.secretsChecksum" . (dict "ctx" "context" "secrets" "list") `(dict "ctx" $ "secrets" (list (dict "name" <Secret>)))`) -}}
{{- $ctx := .ctx -}}
{{- $seen := dict -}}
{{- range $i, $entry := .secrets -}}
{{- if not $entry.name -}}
{{- fail (printf "homeci-lib.secretsChecksum: entry %d has no \"name\" (the Secret)" $i) -}}
{{- end -}}
{{- $data := dict -}}
{{- if $entry.generate -}}
{{- $data = include "homeci-lib.keptSecretData" (dict "ctx" $ctx "name" $entry.name "generate" $entry.generate) | fromJson -}}
{{- else if $entry.data -}}
{{- $data = $entry.data -}}
{{- else -}}
{{- $live := (lookup "v1" "Secret" $ctx.Release.Namespace $entry.name) | default dict -}}
{{- $data = get $live "data" | default dict -}}
{{- end -}}
{{- if $entry.keys -}}
{{- $picked := dict -}}
{{- range $entry.keys -}}
{{- if hasKey $data . -}}{{- $_ := set $picked . (get $data .) -}}{{- end -}}
{{- end -}}
{{- $data = $picked -}}
{{- end -}}
{{- $known := get $seen $entry.name | default dict -}}
{{- $_ := set $seen $entry.name (merge $known (deepCopy $data)) -}}
{{- end -}}
{{- $seen | toJson | sha256sum -}}
{{- end -}}

{{- /*
(dict "ctx" $ "existingSecret" <the chart's own override, or "">) -> a homeci-lib.secretsChecksum entry
(JSON) for the key `username` of the admin Secret (homeci-lib.adminSecret), for workloads that read the
admin's name only at start (Drone's DRONE_USER_CREATE). The umbrella renders <release>-admin with
username = global.admin.username, so that value is used as is; a user's Secret is looked up. The password
is left out on purpose: Gogs follows it without a restart and Drone never reads it.
*/ -}}
{{- define "homeci-lib.adminUsernameEntry" -}}
{{- include "homeci-lib.args" (list "homeci-lib.adminUsernameEntry" . (dict "ctx" "context" "existingSecret" "string?") `(dict "ctx" $ "existingSecret" .Values.admin.existingSecret)`) -}}
{{- $name := include "homeci-lib.adminSecret" (dict "ctx" .ctx "existingSecret" .existingSecret) -}}
{{- $entry := dict "name" $name "keys" (list "username") -}}
{{- $username := dig "admin" "username" "" (.ctx.Values.global | default dict) -}}
{{- if and (eq $name (include "homeci-lib.fullname" (dict "ctx" .ctx "component" "admin"))) $username -}}
{{- $_ := set $entry "data" (dict "username" ($username | b64enc)) -}}
{{- end -}}
{{- $entry | toJson -}}
{{- end -}}
