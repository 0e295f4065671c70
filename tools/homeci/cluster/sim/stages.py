"""kwok Stages for the simulated cluster.

kwokctl adds its built-in node and pod Stages only when the configuration holds no Stage at all, so
the moment we add our own (LoadBalancer addresses, completing ``helm test`` pods) we must list the
node and pod lifecycle explicitly too. These are written for homeci and follow kwok's documented
Stage API (kwok.x-k8s.io/v1alpha1): a ``selector`` picks objects, ``next.statusTemplate`` (a Go
template) becomes the new status, ``next.delete`` deletes.
"""

from __future__ import annotations

from typing import Any

API = "kwok.x-k8s.io/v1alpha1"
READY = '.status.conditions.[] | select( .type == "Ready" ) | .status'

_NODE_STATUS = """\
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
"""

def _node_resources(field: str) -> str:
    """``status.<field>`` kept as the Node was created with, else kwok's default size."""
    return f"""\
{field}:
{{{{ with .status.{field} }}}}
{{{{ YAML . 1 }}}}
{{{{ else }}}}
  cpu: "32"
  memory: 256Gi
  pods: "110"
{{{{ end }}}}
"""


_NODE_INIT = _NODE_STATUS + _node_resources("allocatable") + _node_resources("capacity") + """\
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  containerRuntimeVersion: {{ printf "kwok-%s" Version }}
  kernelVersion: {{ printf "kwok-%s" Version }}
  kubeletVersion: {{ printf "kwok-%s" Version }}
  kubeProxyVersion: {{ printf "kwok-%s" Version }}
  bootID: ""
  machineID: ""
  osImage: "simulated by kwok"
  systemUUID: ""
phase: Running
"""

_POD_RUNNING = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $hostNet := or .spec.hostNetwork false }}
{{ $uid := or .metadata.uid "" }}
{{ $podName := or .metadata.name "" }}
{{ $podNs := or .metadata.namespace "" }}
{{ with PodIPsWith .spec.nodeName $hostNet $uid $podName $podNs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

_POD_DONE = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""

# Every LoadBalancer Service gets 127.0.0.1, like a single-node k3s servicelb would give the host IP.
_LB_STATUS = """\
loadBalancer:
  ingress:
  - ip: 127.0.0.1
    ipMode: VIP
"""


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    expr: dict[str, Any] = {"key": key, "operator": op}
    if values:
        expr["values"] = list(values)
    return expr


def _stage(name: str, kind: str, exprs: list[dict[str, Any]], next_: dict[str, Any],
           delay_ms: tuple[int, int] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": kind},
        "selector": {"matchExpressions": exprs},
        "next": next_,
    }
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms[0], "jitterDurationMilliseconds": delay_ms[1]}
    return {"apiVersion": API, "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def stages() -> list[dict[str, Any]]:
    """The full Stage list: node lifecycle, pod lifecycle, plus homeci's additions."""
    live = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    return [
        # Nodes: become Ready once, then heartbeat (kwok renews the node Lease itself).
        _stage("homeci-node-initialize", "Node", [_expr(READY, "NotIn", "True")],
               {"statusTemplate": _NODE_INIT}),
        _stage("homeci-node-heartbeat", "Node",
               [_expr(".status.phase", "In", "Running"), _expr(READY, "In", "True")],
               {"statusTemplate": _NODE_STATUS}, delay_ms=(20000, 25000)),
        # Pods: scheduled Pending pods start Running and Ready.
        _stage("homeci-pod-ready", "Pod",
               [live, _expr(".status.phase", "In", "Pending"), _expr(READY, "NotIn", "True")],
               {"statusTemplate": _POD_RUNNING}),
        # Pods owned by a Job (hook Jobs included) finish successfully.
        _stage("homeci-pod-complete", "Pod",
               [live, _expr(".status.phase", "In", "Running"),
                _expr(".metadata.ownerReferences.[].kind", "In", "Job")],
               {"statusTemplate": _POD_DONE}),
        # Bare `helm test` hook pods finish successfully too (else `helm test` would hang).
        _stage("homeci-pod-helm-test-complete", "Pod",
               [live, _expr(".status.phase", "In", "Running"),
                _expr('.metadata.annotations["helm.sh/hook"]', "In", "test", "test-success")],
               {"statusTemplate": _POD_DONE}),
        # Deleting pods go away at once (no kubelet to confirm termination).
        _stage("homeci-pod-delete", "Pod", [_expr(".metadata.deletionTimestamp", "Exists")],
               {"delete": True}),
        # LoadBalancer Services get an address, so `helm --wait` does not hang on them.
        _stage("homeci-service-loadbalancer", "Service",
               [_expr(".spec.type", "In", "LoadBalancer"),
                _expr(".status.loadBalancer.ingress", "DoesNotExist")],
               {"statusTemplate": _LB_STATUS}),
    ]
