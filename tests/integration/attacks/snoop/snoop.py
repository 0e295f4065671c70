"""Run inside a pipeline step: look for what no step should have. One line per attempt."""

import json
import os
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path

results = []


def report(ident, refused, detail):
    results.append(refused)
    print(f"ATTACK {ident} {'REFUSED' if refused else 'OPEN'} {detail}", flush=True)


# 1. a Gogs token: the netrc file the runner would write, and the environment
homes = {os.environ.get("HOME", "/root"), "/root", "/home/drone"}
netrcs = [h for h in homes if Path(h, ".netrc").exists()]
report("netrc-file", not netrcs, f"netrc files: {netrcs or 'none'}")
names = sorted(k for k in os.environ if "NETRC" in k or k in ("DRONE_GIT_PASSWORD", "DRONE_TOKEN"))
COMMITS = {"DRONE_COMMIT_SHA", "DRONE_COMMIT", "DRONE_COMMIT_AFTER", "DRONE_COMMIT_BEFORE"}
hexes = sorted(k for k, v in os.environ.items()
               if re.fullmatch(r"[0-9a-f]{40}", v) and k not in COMMITS and not k.startswith("CI_COMMIT"))
report("token-env", not names and not hexes, f"credential-like variables: {names + hexes or 'none'}")

# 2. what the node or later builds trust
for ident, action in (("ca-write", lambda: Path("/etc/homeci/planted.crt").write_text("x")),
                      ("ca-mkdir", lambda: Path("/etc/homeci/certs").mkdir()),
                      ("ca-replace", lambda: Path("/etc/homeci/ca.crt").write_text("x"))):
    try:
        action()
        report(ident, False, "wrote into /etc/homeci")
    except OSError as exc:
        report(ident, True, f"{type(exc).__name__}: {exc.strerror}")

# 3. the runner's RPC through the public name
registry = os.environ.get("HOMECI_REGISTRY", "registry.homeci.localhost")
domain = registry.split(".", 1)[1]
ctx = ssl.create_default_context(cafile="/etc/homeci/ca.crt")
url = f"https://ci.{domain}/rpc/v2/stage"
try:
    with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=15,
                                context=ctx) as resp:
        report("rpc-public", False, f"{url}: HTTP {resp.status}")
except urllib.error.HTTPError as exc:
    report("rpc-public", exc.code == 404, f"{url}: HTTP {exc.code} {exc.read()[:80]!r}")
except OSError as exc:
    report("rpc-public", True, f"{url}: {exc}")

# 4. the Kubernetes API with the step's own ServiceAccount
sa = Path("/var/run/secrets/kubernetes.io/serviceaccount")
if (sa / "token").exists():
    ns = (sa / "namespace").read_text()
    api = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"
    req = urllib.request.Request(f"{api}/api/v1/namespaces/{ns}/secrets",
                                 headers={"Authorization": f"Bearer {(sa / 'token').read_text()}"})
    try:
        with urllib.request.urlopen(req, timeout=15,
                                    context=ssl.create_default_context(cafile=str(sa / "ca.crt"))) as resp:
            names = [i["metadata"]["name"] for i in json.load(resp)["items"]]
            report("read-secrets", False, f"listed Secrets of {ns}: {names}")
    except urllib.error.HTTPError as exc:
        report("read-secrets", exc.code == 403, f"list Secrets in {ns}: HTTP {exc.code}")
else:
    report("read-secrets", True, "no ServiceAccount token in the step")

raise SystemExit(0 if all(results) else 1)
