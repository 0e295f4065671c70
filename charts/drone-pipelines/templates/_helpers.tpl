{{- /* Helpers of the drone-pipelines chart, all prefixed `homeci-pipelines.`. */ -}}

{{- define "homeci-pipelines.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: drone-pipelines
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: homeci
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{- /* Derived names and endpoints. */ -}}
{{- define "homeci-pipelines.buildNamespace" -}}
{{- default (printf "%s-builds" .Values.stack.release) .Values.stack.buildNamespace -}}
{{- end -}}

{{- define "homeci-pipelines.registryHost" -}}
{{- default (printf "registry.%s" .Values.stack.domain) .Values.registry.host -}}
{{- end -}}

{{- define "homeci-pipelines.droneServer" -}}
{{- default (printf "http://%s-drone.%s.svc:80" .Values.stack.release .Release.Namespace) .Values.drone.server | trimSuffix "/" -}}
{{- end -}}

{{- /* ServiceAccount prefix: the deployer of target namespace N is <prefix>N. */ -}}
{{- define "homeci-pipelines.deployerPrefix" -}}{{ .Release.Name }}-deploy-{{- end -}}

{{- define "homeci-pipelines.registrationSecretName" -}}{{ .Release.Name }}-registration{{- end -}}

{{- define "homeci-pipelines.registryAuthSecret" -}}
{{- default (printf "%s-registry-auth" .Values.stack.release) .Values.registry.auth.existingSecret -}}
{{- end -}}

{{- define "homeci-pipelines.droneTokenSecret" -}}
{{- default (printf "%s-drone-machine" .Values.stack.release) .Values.drone.token.existingSecret -}}
{{- end -}}

{{- define "homeci-pipelines.caSourceConfigMap" -}}
{{- default (printf "%s-ca" .Values.stack.release) .Values.ca.existingConfigMap -}}
{{- end -}}

{{- /* "true" when rendering against a real cluster (install/upgrade, --dry-run=server); empty offline. */ -}}
{{- define "homeci-pipelines.online" -}}
{{- if lookup "v1" "Namespace" "" .Release.Namespace -}}true{{- end -}}
{{- end -}}

{{- /*
Registry credentials as JSON {"username","password"}: from values when both are set, else from the
existing Secret via lookup. Online and not found: fail with what to do. Offline and not found: "{}"
(the objects that need them are then not rendered; see README "Offline rendering").
*/ -}}
{{- define "homeci-pipelines.registryCredentials" -}}
{{- $a := .Values.registry.auth -}}
{{- if and $a.username $a.password -}}
{{- dict "username" $a.username "password" $a.password | toJson -}}
{{- else -}}
{{- $name := include "homeci-pipelines.registryAuthSecret" . -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $data := ($s | default dict).data | default dict -}}
{{- if and (hasKey $data $a.usernameKey) (hasKey $data $a.passwordKey) -}}
{{- dict "username" (get $data $a.usernameKey | b64dec) "password" (get $data $a.passwordKey | b64dec) | toJson -}}
{{- else if include "homeci-pipelines.online" . -}}
{{- fail (printf "registry.auth: Secret %s/%s with keys %s and %s not found; install the homeci umbrella first, or set registry.auth.existingSecret or registry.auth.username/password" .Release.Namespace $name $a.usernameKey $a.passwordKey) -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* The CA PEM: ca.pem, else the existing ConfigMap via lookup; online and missing: fail; offline: "". */ -}}
{{- define "homeci-pipelines.caPem" -}}
{{- if .Values.ca.pem -}}
{{- .Values.ca.pem -}}
{{- else -}}
{{- $name := include "homeci-pipelines.caSourceConfigMap" . -}}
{{- $cm := lookup "v1" "ConfigMap" .Release.Namespace $name -}}
{{- $data := ($cm | default dict).data | default dict -}}
{{- if hasKey $data .Values.ca.key -}}
{{- get $data .Values.ca.key -}}
{{- else if include "homeci-pipelines.online" . -}}
{{- fail (printf "ca: ConfigMap %s/%s with key %s not found; install the homeci umbrella first, or set ca.existingConfigMap or ca.pem" .Release.Namespace $name .Values.ca.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /*
Image reference <repository>:<tag>[@<digest>]: (dict "image" .Values.x.image "key" "x.image"). A moving
tag fails in one sentence naming the key.
*/ -}}
{{- define "homeci-pipelines.image" -}}
{{- $tag := toString .image.tag -}}
{{- if has (lower $tag) (list "latest" "edge" "next-latest" "main" "master" "nightly" "stable" "dev") -}}
{{- fail (printf "%s.tag %q is a moving tag (its content changes under the same name): pin a version tag such as the chart's default, and optionally %s.digest" .key $tag .key) -}}
{{- end -}}
{{- $ref := printf "%s:%s" .image.repository $tag -}}
{{- with .image.digest -}}{{- $ref = printf "%s@%s" $ref . -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* Cross-field checks the schema cannot express; fail with one sentence. */ -}}
{{- define "homeci-pipelines.validate" -}}
{{- $domain := toString .Values.stack.domain -}}
{{- if regexMatch "^[0-9]+([.][0-9]+){3}(:[0-9]+)?$" $domain -}}
{{- fail (printf "stack.domain %q is an IP address, but the stack's hosts are <label>.<domain>: set the umbrella's global.domain (a DNS name such as %s.sslip.io or home.lan)" $domain (replace "." "-" (regexReplaceAll ":[0-9]+$" $domain ""))) -}}
{{- end -}}
{{- $seen := dict -}}
{{- $build := include "homeci-pipelines.buildNamespace" . -}}
{{- range $i, $t := .Values.targets -}}
{{- if hasKey $seen $t.namespace -}}
{{- fail (printf "targets[%d].namespace %q is listed twice: merge the owners into one entry" $i $t.namespace) -}}
{{- end -}}
{{- $_ := set $seen $t.namespace true -}}
{{- if eq $t.namespace $.Release.Namespace -}}
{{- fail (printf "targets[%d].namespace %q is the release namespace (the homeci stack itself): deploy apps to their own namespace" $i $t.namespace) -}}
{{- end -}}
{{- if eq $t.namespace $build -}}
{{- fail (printf "targets[%d].namespace %q is the build namespace: deploy apps to their own namespace" $i $t.namespace) -}}
{{- end -}}
{{- if gt (len (printf "%s%s" (include "homeci-pipelines.deployerPrefix" $) $t.namespace)) 63 -}}
{{- fail (printf "targets[%d].namespace %q: the ServiceAccount name %s%s is longer than 63 characters; use a shorter release name" $i $t.namespace (include "homeci-pipelines.deployerPrefix" $) $t.namespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Every owner of every target, sorted and de-duplicated. */ -}}
{{- define "homeci-pipelines.owners" -}}
{{- $owners := list -}}
{{- range .Values.targets -}}
{{- $owners = concat $owners .owners -}}
{{- end -}}
{{- $owners | uniq | sortAlpha | join "," -}}
{{- end -}}

{{- /*
The Go text/template variables the registered Drone templates read as their defaults. Rendered in
front of each template file (files/templates/*.yaml), so what Drone stores is self-contained; each
value is a JSON string, which is also a valid Go string literal.
*/ -}}
{{- define "homeci-pipelines.templateDefaults" -}}
{{- $p := .Values.pipeline -}}
{{- $vars := dict
  "d_registry" (include "homeci-pipelines.registryHost" .)
  "d_ca_file" $p.caFile
  "d_sa_prefix" (include "homeci-pipelines.deployerPrefix" .)
  "d_host_aliases" (ternary ($p.hostAliases | toJson) "" (gt (len $p.hostAliases) 0))
  "d_secret_username" $p.secretNames.username
  "d_secret_password" $p.secretNames.password
  "d_image_kaniko" (include "homeci-pipelines.image" (dict "image" $p.images.kaniko "key" "pipeline.images.kaniko"))
  "d_image_kubectl" (include "homeci-pipelines.image" (dict "image" $p.images.kubectl "key" "pipeline.images.kubectl"))
  "d_image_test" (include "homeci-pipelines.image" (dict "image" $p.images.test "key" "pipeline.images.test"))
  "d_test_cpu" (toString $p.resources.test.cpu)
  "d_test_memory" (toString $p.resources.test.memory)
  "d_build_cpu" (toString $p.resources.build.cpu)
  "d_build_memory" (toString $p.resources.build.memory)
  "d_deploy_cpu" (toString $p.resources.deploy.cpu)
  "d_deploy_memory" (toString $p.resources.deploy.memory)
  "d_rollout_timeout" $p.rolloutTimeout
  "d_manifests" $p.manifests
  "d_mirror" (ternary (include "homeci-pipelines.registryHost" .) $p.registryMirror.host (eq $p.registryMirror.host "default"))
  "d_mirror_strict" $p.registryMirror.skipDefaultRegistryFallback
-}}
{{ printf "{{- /* defaults from the drone-pipelines chart %s, release %s/%s: change them with helm upgrade */ -}}" .Chart.Version .Release.Namespace .Release.Name }}
{{- range $k := keys $vars | sortAlpha }}
{{ printf "{{- $%s := %s -}}" $k (get $vars $k | toJson) }}
{{- end }}
{{- end -}}
