{{- /*
Argument checks for the library's helpers: a helper called without an argument it needs, with one of the
wrong kind, with an argument it does not know, or with something other than what it takes fails the
render in one sentence naming the helper, the argument and how to call it, instead of rendering a wrong
name or crashing deep inside Go's template engine.

  (list <helper> <its argument> <spec> <usage>) -> nothing, or fail.

spec is either "context" (the helper takes the chart's root context $ itself) or a dict of argument name
-> kind, where kind is one of
  context  the chart's root context $ (a map with .Values, .Release and .Chart)
  string   a non-empty string
  map      a dict
  list     a list
  number   an integer or a number
  bool     true or false
  scalar   a string or a number
and a trailing "?" makes the argument optional (absent or null; a string may then be empty).
usage is the call to show, e.g. (dict "ctx" $ "component" "gogs").
*/ -}}
{{- define "homeci-lib.args" -}}
{{- $helper := index . 0 -}}
{{- $args := index . 1 -}}
{{- $spec := index . 2 -}}
{{- $usage := index . 3 -}}
{{- if kindIs "string" $spec -}}
{{- if not (include "homeci-lib.isContext" $args) -}}
{{- fail (printf "%s takes the chart's root context, but got %s: call it as %s" $helper (include "homeci-lib.kindName" $args) $usage) -}}
{{- end -}}
{{- else -}}
{{- if not (kindIs "map" $args) -}}
{{- fail (printf "%s takes a dict of named arguments, but got %s: call it as %s" $helper (include "homeci-lib.kindName" $args) $usage) -}}
{{- end -}}
{{- if include "homeci-lib.isContext" $args -}}
{{- fail (printf "%s takes a dict of named arguments, but got the chart's root context: call it as %s" $helper $usage) -}}
{{- end -}}
{{- range $name := keys $args | sortAlpha -}}
{{- if not (hasKey $spec $name) -}}
{{- fail (printf "%s has no argument %q (it takes %s): call it as %s" $helper $name (keys $spec | sortAlpha | join ", ") $usage) -}}
{{- end -}}
{{- end -}}
{{- $want := dict "context" "the chart's root context $" "string" "a non-empty string" "map" "a dict" "list" "a list" "number" "a number" "bool" "true or false" "scalar" "a string or a number" -}}
{{- range $name, $kind := $spec -}}
{{- $optional := hasSuffix "?" $kind -}}
{{- $base := trimSuffix "?" $kind -}}
{{- if not (hasKey $want $base) -}}
{{- fail (printf "homeci-lib.args: %s declares argument %q of unknown kind %q" $helper $name $kind) -}}
{{- end -}}
{{- $value := index $args $name -}}
{{- if or (not (hasKey $args $name)) (kindIs "invalid" $value) -}}
{{- if not $optional -}}
{{- fail (printf "%s needs argument %q (%s), but it is missing: call it as %s" $helper $name (get $want $base) $usage) -}}
{{- end -}}
{{- else -}}
{{- $number := or (kindIs "int" $value) (kindIs "int64" $value) (kindIs "float64" $value) -}}
{{- $ok := false -}}
{{- if eq $base "context" -}}{{- $ok = include "homeci-lib.isContext" $value -}}
{{- else if eq $base "string" -}}{{- $ok = and (kindIs "string" $value) (or $optional (ne $value "")) -}}
{{- else if eq $base "map" -}}{{- $ok = kindIs "map" $value -}}
{{- else if eq $base "list" -}}{{- $ok = kindIs "slice" $value -}}
{{- else if eq $base "number" -}}{{- $ok = $number -}}
{{- else if eq $base "bool" -}}{{- $ok = kindIs "bool" $value -}}
{{- else if eq $base "scalar" -}}{{- $ok = or (kindIs "string" $value) $number -}}
{{- end -}}
{{- if not $ok -}}
{{- fail (printf "%s needs argument %q to be %s, but it is %s: call it as %s" $helper $name (ternary "a string" (get $want $base) (and $optional (eq $base "string"))) (include "homeci-lib.kindName" $value) $usage) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* <anything> -> "true" when it is a chart's root context (.Values, .Release and .Chart), else "". */ -}}
{{- define "homeci-lib.isContext" -}}
{{- if and (kindIs "map" .) (hasKey . "Values") (hasKey . "Release") (hasKey . "Chart") -}}true{{- end -}}
{{- end -}}

{{- /* <anything> -> how an error sentence names its kind: "an empty string", "a map", "nothing", ... */ -}}
{{- define "homeci-lib.kindName" -}}
{{- if kindIs "invalid" . -}}nothing
{{- else if and (kindIs "string" .) (eq . "") -}}an empty string
{{- else if kindIs "string" . -}}a string ({{ . | quote }})
{{- else if kindIs "slice" . -}}a list
{{- else if kindIs "map" . -}}a dict
{{- else if kindIs "bool" . -}}{{ . }}
{{- else -}}a {{ kindOf . }} ({{ . }})
{{- end -}}
{{- end -}}
