#!/bin/sh
# With alice's deployer ServiceAccount: try what a deployer must not do. One line per attempt:
# ATTACK <id> REFUSED|OPEN <the API's answer>. Exit 1 if anything got through (and remove it).
set -u
domain="${HOMECI_REGISTRY#*.}"
open=0
work="$(mktemp -d)"

attempt() {  # attempt <id> <namespace>; the manifest on stdin
  id="$1"
  cat > "$work/$id.yaml"
  if out="$(kubectl -n "$2" apply -f "$work/$id.yaml" 2>&1)"; then
    echo "ATTACK $id OPEN $(echo "$out" | tr '\n' ' ')"
    kubectl -n "$2" delete -f "$work/$id.yaml" --wait=false >/dev/null 2>&1
    open=1
  else
    # the admission policy's line (kubectl prints Pod Security warnings before it)
    echo "ATTACK $id REFUSED $(echo "$out" | grep -v '^Warning: ' | tr '\n' ' ' | cut -c1-600)"
  fi
}

ingress() {  # ingress <name> <host> <path>
  cat <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: $1}
spec:
  ingressClassName: homeci
  rules:
  - host: $2
    http:
      paths:
      - {path: $3, pathType: Prefix, backend: {service: {name: hello, port: {number: 80}}}}
YAML
}

ingress steal-registry "registry.$domain" /v2 | attempt ingress-registry-v2 team
ingress steal-git "git.$domain" / | attempt ingress-git team
ingress steal-outside example.com / | attempt ingress-outside-domain team
ingress steal-sample "sample-app.$domain" / | attempt ingress-other-app team

attempt deploy-other-namespace apps <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: intruder}
spec:
  selector: {matchLabels: {app: intruder}}
  template:
    metadata: {labels: {app: intruder}}
    spec:
      containers: [{name: c, image: docker.io/library/alpine:3.24.2}]
YAML

# A deployer may create Deployments in its namespace (that is its job), so these two go through a
# Deployment's pod template: the admission policy, not RBAC, must refuse them.
attempt privileged-deployment team <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: rooted}
spec:
  selector: {matchLabels: {app: rooted}}
  template:
    metadata: {labels: {app: rooted}}
    spec:
      containers:
      - name: c
        image: docker.io/library/alpine:3.24.2
        securityContext: {privileged: true}
YAML

attempt mount-pull-secret team <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: looter}
spec:
  selector: {matchLabels: {app: looter}}
  template:
    metadata: {labels: {app: looter}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: c
        image: docker.io/library/alpine:3.24.2
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        volumeMounts: [{name: loot, mountPath: /loot}]
      volumes: [{name: loot, secret: {secretName: homeci-registry}}]
YAML

attempt other-serviceaccount team <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: borrower}
spec:
  selector: {matchLabels: {app: borrower}}
  template:
    metadata: {labels: {app: borrower}}
    spec:
      serviceAccountName: homeci-traefik
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: c
        image: docker.io/library/alpine:3.24.2
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
YAML

rm -rf "$work"
exit "$open"
