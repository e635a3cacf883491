"""The pins a client gets are the keys the gateway holds: checked against the API server.

    python e2e/served_pins.py        in the e2e workspace, with the stack selected and deployed

For every pinned host in `pulumi stack output gatewayPins`: every key's Secret exists in each
namespace that serves the host and holds the private key of that key's pin (computed from the
Secret with the openssl command line, not with the program's code); every Ingress serving the
host names the active key's Secret. Prints one line per host; exits 1 on any mismatch.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e.kube import Kube  # noqa: E402


def openssl_pin(private_key_pem: bytes) -> str:
    public = subprocess.run(
        ["openssl", "pkey", "-pubout", "-outform", "der"], input=private_key_pem, capture_output=True, check=True
    )
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=public.stdout, capture_output=True, check=True
    )
    return base64.b64encode(digest.stdout).decode()


def gateway_pins() -> dict[str, Any]:
    out = subprocess.run(
        ["pulumi", "stack", "output", "gatewayPins", "--json", "--non-interactive"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def problems(kube: Kube, pins: dict[str, Any]) -> list[str]:
    found = []
    ingresses = kube.get("/apis/networking.k8s.io/v1/ingresses")["items"]
    for host, expected in pins.items():
        serving = [i for i in ingresses if any(rule.get("host") == host for rule in i["spec"].get("rules", []))]
        if not serving:
            found.append(f"{host}: no Ingress serves it")
        for route in serving:
            ns, name = route["metadata"]["namespace"], route["metadata"]["name"]
            tls = [t["secretName"] for t in route["spec"].get("tls", []) if host in t.get("hosts", [])]
            active = f"pinned-{host}-{expected['active']}"
            if tls != [active]:
                found.append(f"{host}: Ingress {ns}/{name} serves it from {tls}, not {active}")
            for key_id, pin in expected["pins"].items():
                secret = kube.get(f"/api/v1/namespaces/{ns}/secrets/pinned-{host}-{key_id}")
                held = openssl_pin(base64.b64decode(secret["data"]["tls.key"]))
                if held != pin:
                    found.append(f"{host}: Secret {ns}/pinned-{host}-{key_id} holds the key of pin {held}, not {pin}")
    return found


def main() -> int:
    kube = Kube(Path(os.environ["E2E_CLUSTER_DIR"]))
    pins = gateway_pins()
    found = problems(kube, pins)
    for host, expected in pins.items():
        print(f"{host}: serves {expected['active']}; pins {json.dumps(expected['pins'], sort_keys=True)}")
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found or not pins else 0


if __name__ == "__main__":
    sys.exit(main())
