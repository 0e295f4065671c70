{{- /*
Helpers of the drone-pipelines chart, all prefixed `homeci-pipelines.`. Labels, image references, the
domain check, the stack's object names and the online test come from the homeci-lib library chart
(charts/homeci-lib); the stack's names use stack.release as their release.
*/ -}}

{{- /* Derived names and endpoints. */ -}}
{{- define "homeci-pipelines.buildNamespace" -}}
{{- .Values.stack.buildNamespace | default (include "homeci-lib.fullname" (dict "ctx" . "release" .Values.stack.release "component" "builds")) -}}
{{- end -}}

{{- /* $ -> registry.host, else <stack.hosts.registry>.<stack.domain> (homeci-lib.registryHost). */ -}}
{{- define "homeci-pipelines.registryHost" -}}
{{- include "homeci-lib.registryHost" (dict "ctx" . "host" .Values.registry.host "label" .Values.stack.hosts.registry "domain" .Values.stack.domain) -}}
{{- end -}}

{{- define "homeci-pipelines.droneServer" -}}
{{- .Values.drone.server | default (printf "http://%s:80" (include "homeci-lib.serviceHost" (dict "ctx" . "release" .Values.stack.release "component" "drone"))) | trimSuffix "/" -}}
{{- end -}}

{{- /*
(owner name) -> the value drone-runner-kube v1.0.0-rc.5 gives the label io.drone.repo.namespace of every
step pod of that owner's repositories: gosimple/slug v1.9.0's Make, which for Gogs names (ASCII letters,
digits, - _ and .) lower-cases, turns every character but a-z 0-9 - _ into -, merges runs of - and trims
- and _ from both ends. The runner sets it after the pipeline's own labels, so a repository cannot forge it.
*/ -}}
{{- define "homeci-pipelines.ownerKey" -}}
{{- $s := regexReplaceAll "[^a-z0-9_-]" (lower .) "-" -}}
{{- trimAll "-_" (regexReplaceAll "-+" $s "-") -}}
{{- end -}}

{{- /* (dict "ctx" $ "key" <ownerKey>) -> <release>-deployer-<key, _ as ->: the owner's deployer ServiceAccount. */ -}}
{{- define "homeci-pipelines.deployerName" -}}
{{- printf "%s-deployer-%s" .ctx.Release.Name (replace "_" "-" .key) -}}
{{- end -}}

{{- /*
$ -> JSON {"owners": {<owner>: <ownerKey>}, "deployers": {<ownerKey>: <ServiceAccount>}} for every owner
of every target. Fails with one sentence when two owners look alike to the runner, when two keys give
one ServiceAccount name, or when a name is longer than 63 characters.
*/ -}}
{{- define "homeci-pipelines.deployerMap" -}}
{{- $owners := dict -}}
{{- $deployers := dict -}}
{{- $byName := dict -}}
{{- range $i, $t := .Values.targets -}}
{{- range $o := $t.owners -}}
{{- $key := include "homeci-pipelines.ownerKey" $o -}}
{{- $sa := include "homeci-pipelines.deployerName" (dict "ctx" $ "key" $key) -}}
{{- $prev := "" -}}
{{- range $other, $k := $owners -}}{{- if and (eq $k $key) (ne $other $o) -}}{{- $prev = $other -}}{{- end -}}{{- end -}}
{{- if $prev -}}
{{- fail (printf "targets[%d].owners: %q and %q both reach Drone's Kubernetes runner as %q (it lower-cases owner names, turns dots into dashes and trims - and _), so the platform cannot tell their pipelines apart: list only one of them" $i $prev $o $key) -}}
{{- end -}}
{{- if and (hasKey $byName $sa) (ne (get $byName $sa) $key) -}}
{{- fail (printf "targets[%d].owners: %q and another owner (runner name %q) would share the deployer ServiceAccount %s: list only one of them" $i $o (get $byName $sa) $sa) -}}
{{- end -}}
{{- if gt (len $sa) 63 -}}
{{- fail (printf "targets[%d].owners: owner %q gives the deployer ServiceAccount name %s, longer than 63 characters: use a shorter release name" $i $o $sa) -}}
{{- end -}}
{{- $_ := set $owners $o $key -}}
{{- $_ := set $deployers $key $sa -}}
{{- $_ := set $byName $sa $key -}}
{{- end -}}
{{- end -}}
{{- dict "owners" $owners "deployers" $deployers | toJson -}}
{{- end -}}

{{- /* (dict "ctx" $ "owner" <name>) -> the target namespaces listing that owner, comma-separated. */ -}}
{{- define "homeci-pipelines.targetsOf" -}}
{{- $out := list -}}
{{- range .ctx.Values.targets -}}{{- if has $.owner .owners -}}{{- $out = append $out .namespace -}}{{- end -}}{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{- /* $ -> JSON list of the deployers' user names (system:serviceaccount:<build namespace>:<name>), sorted. */ -}}
{{- define "homeci-pipelines.deployerUsers" -}}
{{- $build := include "homeci-pipelines.buildNamespace" . -}}
{{- $users := list -}}
{{- range $_, $sa := (include "homeci-pipelines.deployerMap" . | fromJson).deployers -}}
{{- $users = append $users (printf "system:serviceaccount:%s:%s" $build $sa) -}}
{{- end -}}
{{- $users | sortAlpha | toJson -}}
{{- end -}}

{{- /* $ -> the stack's own public hosts (stack.hosts under stack.domain, port dropped) as a JSON list. */ -}}
{{- define "homeci-pipelines.stackHosts" -}}
{{- $domain := include "homeci-pipelines.hostDomain" . -}}
{{- $hosts := list -}}
{{- range $k := keys .Values.stack.hosts | sortAlpha -}}
{{- $hosts = append $hosts (include "homeci-lib.hostName" (dict "label" (get $.Values.stack.hosts $k) "domain" $domain)) -}}
{{- end -}}
{{- $hosts | toJson -}}
{{- end -}}

{{- /* $ -> stack.domain as Ingress hosts carry it: lower case, without a :port. */ -}}
{{- define "homeci-pipelines.hostDomain" -}}
{{- regexReplaceAll ":[0-9]+$" (lower .Values.stack.domain) "" -}}
{{- end -}}

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
{{- $level := $t.podSecurity | default "restricted" -}}
{{- if and (ne $level "restricted") (not $t.podSecurityReason) -}}
{{- fail (printf "targets[%d].podSecurity is %q: say why in targets[%d].podSecurityReason (or use restricted)" $i $level $i) -}}
{{- end -}}
{{- end -}}
{{- $_ := include "homeci-pipelines.deployerMap" . -}}
{{- /* Host labels: never the stack's own, each in one target, at most one target without a list. */ -}}
{{- $stack := dict -}}
{{- range $k, $label := .Values.stack.hosts -}}{{- $_ := set $stack $label $k -}}{{- end -}}
{{- $owner := dict -}}
{{- $open := list -}}
{{- range $i, $t := .Values.targets -}}
{{- if not (hasKey $t "hosts") -}}
{{- $open = append $open $i -}}
{{- end -}}
{{- range $label := $t.hosts | default list -}}
{{- if hasKey $stack $label -}}
{{- fail (printf "targets[%d].hosts: %q is the stack's own %s host (stack.hosts.%s): choose another label" $i $label (get $stack $label) (get $stack $label)) -}}
{{- end -}}
{{- if hasKey $owner $label -}}
{{- fail (printf "targets[%d].hosts: %q is already a host of targets[%s]: a host label belongs to one target only" $i $label (get $owner $label)) -}}
{{- end -}}
{{- $_ := set $owner $label (toString $i) -}}
{{- end -}}
{{- end -}}
{{- if gt (len $open) 1 -}}
{{- fail (printf "targets[%d] and targets[%d] both leave hosts out: only one target may use every free host label; give the other a hosts list" (index $open 0) (index $open 1)) -}}
{{- end -}}
{{- end -}}

{{- /* $ -> the target namespaces as a sorted JSON list. */ -}}
{{- define "homeci-pipelines.targetNamespaces" -}}
{{- $out := list -}}
{{- range .Values.targets -}}{{- $out = append $out .namespace -}}{{- end -}}
{{- $out | sortAlpha | toJson -}}
{{- end -}}

{{- /*
$ -> JSON {<namespace>: {"labels": {...}, "annotations": {...}}}: what the registration Job makes each
target namespace carry. Pod Security enforce = targets[].podSecurity (default restricted); audit and warn
stay restricted, so kubectl prints what a looser target still lets through; the reason is an annotation
(null removes a stale one).
*/ -}}
{{- define "homeci-pipelines.namespaceMeta" -}}
{{- $out := dict -}}
{{- range .Values.targets -}}
{{- $level := .podSecurity | default "restricted" -}}
{{- $labels := dict "pod-security.kubernetes.io/enforce" $level "pod-security.kubernetes.io/audit" "restricted" "pod-security.kubernetes.io/warn" "restricted" -}}
{{- $reason := ternary nil .podSecurityReason (eq $level "restricted") -}}
{{- $_ := set $out .namespace (dict "labels" $labels "annotations" (dict "homeci.dev/pod-security-reason" $reason)) -}}
{{- end -}}
{{- $out | toJson -}}
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
  "d_ingress_class" .Values.stack.ingressClass
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
{{ printf "{{- /* the deployer ServiceAccount of each owner (targets[].owners); any other owner: none */ -}}" }}
{{ printf "{{- $d_deployer := \"\" -}}" }}
{{- $map := include "homeci-pipelines.deployerMap" . | fromJson }}
{{- range $owner := keys $map.owners | sortAlpha }}
{{ printf "{{- if eq .repo.Namespace %s }}{{ $d_deployer = %s }}{{ end -}}" (toJson $owner) (get $map.deployers (get $map.owners $owner) | toJson) }}
{{- end }}
{{- end -}}
