{{- /*
Helpers of the drone-pipelines chart, all prefixed `homeci-pipelines.`. Labels, image references, the
domain check, the stack's object names and the online test come from the homeci-lib library chart
(charts/homeci-lib); the stack's names use stack.release as their release.
*/ -}}

{{- /* Derived names and endpoints. */ -}}
{{- define "homeci-pipelines.buildNamespace" -}}
{{- .Values.stack.buildNamespace | default (include "homeci-lib.fullname" (dict "ctx" . "release" .Values.stack.release "component" "builds")) -}}
{{- end -}}

{{- define "homeci-pipelines.registryHost" -}}
{{- default (printf "registry.%s" .Values.stack.domain) .Values.registry.host -}}
{{- end -}}

{{- define "homeci-pipelines.droneServer" -}}
{{- .Values.drone.server | default (printf "http://%s:80" (include "homeci-lib.serviceHost" (dict "ctx" . "release" .Values.stack.release "component" "drone"))) | trimSuffix "/" -}}
{{- end -}}

{{- /* ServiceAccount prefix: the deployer of target namespace N is <prefix>N. */ -}}
{{- define "homeci-pipelines.deployerPrefix" -}}{{ .Release.Name }}-deploy-{{- end -}}

{{- define "homeci-pipelines.registrationSecretName" -}}
{{- include "homeci-lib.fullname" (dict "ctx" . "component" "registration") -}}
{{- end -}}

{{- define "homeci-pipelines.registryAuthSecret" -}}
{{- .Values.registry.auth.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "release" .Values.stack.release "component" "registry-auth")) -}}
{{- end -}}

{{- define "homeci-pipelines.droneTokenSecret" -}}
{{- .Values.drone.token.existingSecret | default (include "homeci-lib.fullname" (dict "ctx" . "release" .Values.stack.release "component" "drone-machine")) -}}
{{- end -}}

{{- define "homeci-pipelines.caSourceConfigMap" -}}
{{- .Values.ca.existingConfigMap | default (include "homeci-lib.fullname" (dict "ctx" . "release" .Values.stack.release "component" "ca")) -}}
{{- end -}}

{- end -}}

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
{{- else if include "homeci-lib.online" . -}}
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
{{- else if include "homeci-lib.online" . -}}
{{- fail (printf "ca: ConfigMap %s/%s with key %s not found; install the homeci umbrella first, or set ca.existingConfigMap or ca.pem" .Release.Namespace $name .Values.ca.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Cross-field checks the schema cannot express; fail with one sentence. */ -}}
{{- define "homeci-pipelines.validate" -}}
{{- $_ := include "homeci-lib.checkDomain" (dict "domain" .Values.stack.domain "key" "stack.domain") -}}
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
  "d_image_kaniko" (include "homeci-lib.image" (dict "ctx" . "image" $p.images.kaniko "key" "pipeline.images.kaniko"))
  "d_image_kubectl" (include "homeci-lib.image" (dict "ctx" . "image" $p.images.kubectl "key" "pipeline.images.kubectl"))
  "d_image_test" (include "homeci-lib.image" (dict "ctx" . "image" $p.images.test "key" "pipeline.images.test"))
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
