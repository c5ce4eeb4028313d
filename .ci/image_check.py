"""Run the built image as production would and check what a user gets from it.

The container runs with a read-only root (a tmpfs /tmp, as docker-compose.yml has it) on the
host network. Checked, in order: the non-root user 10001 and the read-only root; /health/ready;
the README's two /predict examples (multipart MedPix, JSON wound); the demo page, /docs and
/redoc with every asset they name; the README's tritonclient call; then SIGTERM while requests
are in flight: every one must be answered and the container must exit 0 within its grace
period (no SIGKILL). Uses docker when present, podman (runc, explicit ulimits) otherwise.

Usage: python .ci/image_check.py [IMAGE]   (default fusionserve:cpu)
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import numpy as np
import tritonclient.http as httpclient

ROOT = Path(__file__).resolve().parents[1]
MEDPIX_IMAGE = ROOT / "examples" / "medpix-MPX1075_synpic20513.png"
MEDPIX_TEXT = (
    "1.6 x 1.8cm right middle lobe nodule, adjacent/anterior to the medial segment bronchus."
)
USER_ID = "10001"
GRACE_S = 30  # the README's --stop-timeout; above FUSIONSERVE_DRAIN_TIMEOUT_S (20 s)
READY_TIMEOUT_S = 180.0
IN_FLIGHT = 16  # concurrent batch requests when SIGTERM arrives


@functools.cache
def engine() -> list[str]:
    """As deploy/image/build.sh picks it: docker when its daemon answers, else podman."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    ):
        return ["docker"]
    return ["podman", "--runtime", "runc"]


def container(*args: str, check: bool = True) -> str:
    done = subprocess.run([*engine(), *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        fail(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def fail(message: str) -> NoReturn:
    raise SystemExit(f"image: FAIL: {message}")


def ok(message: str) -> None:
    print(f"image: ok: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def multipart(fields: dict[str, str], files: dict[str, Path]) -> tuple[bytes, str]:
    """A multipart/form-data body, as `curl -F` sends it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for name, path in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def check_healthcheck(name: str) -> None:
    """The image's own HEALTHCHECK command passes (podman runs it on demand; docker on a timer)."""
    if engine() == ["docker"]:
        print("image: skip: HEALTHCHECK (docker runs it on its own timer)")
        return
    container("healthcheck", "run", name)
    ok("the image's HEALTHCHECK passes")


def check_user_and_root(name: str) -> None:
    uid = container("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())")
    if uid != f"{USER_ID} {USER_ID}":
        fail(f"runs as uid/gid {uid}, not {USER_ID}")
    probe = "open('/srv/exported/probe', 'w')"
    done = subprocess.run([*engine(), "exec", name, "python", "-c", probe], capture_output=True)
    if done.returncode == 0 or b"Read-only file system" not in done.stderr:
        fail(f"root file system is writable or the probe failed otherwise: {done.stderr!r}")
    ok(f"runs as {USER_ID}:{USER_ID} on a read-only root")


def wait_ready(base: str, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if container("inspect", "--format", "{{.State.Running}}", name) != "true":
            fail("container exited before becoming ready")
        try:
            status, body = http(f"{base}/health/ready")
        except OSError:
            status, body = 0, b""
        if status == 200:
            ok(f"/health/ready 200 {body.decode()[:200]}")
            return
        if status == 503 and json.loads(body).get("state") == "failed":
            fail(f"/health/ready: the service failed to start: {body.decode()[:500]}")
        time.sleep(1)
    fail(f"/health/ready not 200 within {READY_TIMEOUT_S:.0f} s")


def predictions(status: int, body: bytes, what: str) -> dict[str, dict[str, object]]:
    if status != 200:
        fail(f"{what}: {status} {body[:300]!r}")
    answer: dict[str, dict[str, object]] = json.loads(body)["predictions"]
    return answer


def check_readme_predicts(base: str) -> None:
    # README Quickstart, first curl: multipart to ?model=medpix (the README shows CT, Thorax).
    body, ctype = multipart({"text": MEDPIX_TEXT}, {"image": MEDPIX_IMAGE})
    status, raw = http(f"{base}/predict?model=medpix", body, {"Content-Type": ctype})
    got = {t: p["label"] for t, p in predictions(status, raw, "multipart /predict").items()}
    if got != {"modality": "CT", "location": "Thorax"}:
        fail(f"README's MedPix example answered {got}, the README shows CT / Thorax")
    ok(f"README multipart /predict (medpix): {got}")
    # Second curl: the JSON body of examples/predict-wound.json.
    wound = (ROOT / "examples" / "predict-wound.json").read_bytes()
    status, raw = http(f"{base}/predict", wound, {"Content-Type": "application/json"})
    answer = predictions(status, raw, "JSON /predict")
    if sorted(answer) != ["severity", "type"]:
        fail(f"README's wound example answered tasks {sorted(answer)}")
    ok(f"README JSON /predict (wound): { {t: p['label'] for t, p in answer.items()} }")


def check_pages(base: str) -> None:
    """Each page and every asset it names (src/href, relative to the page) answers 200."""
    for page in ("/", "/docs", "/redoc"):
        status, html = http(base + page)
        if status != 200:
            fail(f"GET {page}: {status} {html[:300]!r}")
        refs = re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"#]+)"', html.decode())
        for ref in refs:
            url = urllib.parse.urljoin(base + page, ref)
            if not url.startswith(base):
                continue
            status, asset = http(url)
            if status != 200:
                fail(f"{page} names {ref}: {status} {asset[:200]!r}")
        ok(f"GET {page} 200 and its {len(refs)} assets 200")


def check_tritonclient(port: int) -> None:
    """The README's tritonclient[http] call."""
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([MEDPIX_IMAGE.read_bytes()], dtype=object))
    text = httpclient.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([MEDPIX_TEXT.encode()], dtype=object))
    result = client.infer("medpix", [image, text])
    labels = [result.as_numpy(f"label_{t}")[0] for t in ("modality", "location")]
    if labels != [b"CT", b"Thorax"]:
        fail(f"tritonclient answered {labels}")
    ok(f"tritonclient infer medpix: {[label.decode() for label in labels]}")


def check_sigterm(base: str, name: str) -> None:
    """SIGTERM (via stop, which SIGKILLs after the grace period) with batch requests in flight."""
    item = {"image": base64.b64encode(MEDPIX_IMAGE.read_bytes()).decode(), "text": MEDPIX_TEXT}
    batch = json.dumps({"model": "medpix", "items": [item] * 32}).encode()

    def post() -> int:
        return http(f"{base}/predict/batch", batch, {"Content-Type": "application/json"})[0]

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(post) for _ in range(IN_FLIGHT)]
        time.sleep(0.5)  # every request sent; two cores cannot have answered them all yet
        signalled = time.monotonic()
        stop = subprocess.Popen(
            [*engine(), "stop", "--time", str(GRACE_S), name], stdout=subprocess.DEVNULL
        )
        answers = [f.result() for f in futures]
        stop.wait(timeout=GRACE_S + 30)
    exited = time.monotonic() - signalled
    statuses = sorted(set(answers))
    if statuses != [200]:
        fail(f"in-flight requests answered {statuses} after SIGTERM")
    # The service logs how many requests it had in flight when the signal reached it.
    logs = subprocess.run([*engine(), "logs", name], capture_output=True, text=True)
    counted = re.search(r"SIGTERM: draining \((\d+) request", logs.stdout + logs.stderr)
    if not counted or int(counted[1]) == 0:
        fail("no request was in flight when SIGTERM arrived; the check proved nothing")
    code = container("inspect", "--format", "{{.State.ExitCode}}", name)
    if code != "0":
        fail(f"container exited {code} after SIGTERM ({exited:.1f} s; 137 = killed at the grace)")
    ok(
        f"SIGTERM with {counted[1]} of {IN_FLIGHT} requests in flight: all 200, "
        f"exit 0 after {exited:.1f} s (grace {GRACE_S} s)"
    )


def main(image: str) -> None:
    port = free_port()
    name = f"fusionserve-check-{port}"
    # podman: limits this sandbox grants, and the image's HEALTHCHECK run on demand below (its
    # timer needs systemd, which CI machines lack).
    podman_only = [] if engine() == ["docker"] else [
        "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
        "--health-interval", "disable",
    ]  # fmt: skip
    container(
        "run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp",
        "--network", "host", "--stop-timeout", str(GRACE_S), *podman_only,
        "-e", f"FUSIONSERVE_PORT={port}", "-e", "FUSIONSERVE_HOST=127.0.0.1", image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, name)
        check_healthcheck(name)
        check_user_and_root(name)
        check_readme_predicts(base)
        check_pages(base)
        check_tritonclient(port)
        check_sigterm(base, name)
    except BaseException:  # fail() raises SystemExit: show what the service said first
        logs = subprocess.run([*engine(), "logs", name], capture_output=True, text=True)
        tail = (logs.stdout + logs.stderr).splitlines()[-30:]
        print("image: container log (last 30 lines):", *tail, sep="\n  ", file=sys.stderr)
        raise
    finally:
        container("rm", "--force", name, check=False)
    print("image: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fusionserve:cpu")
