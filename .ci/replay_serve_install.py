"""Replay the Dockerfile's CPU target in a clean virtualenv and prove the result serves.

No Docker engine runs in CI. This reads the Dockerfile (build-cpu and cpu stages) and runs its
COPY/RUN steps with container paths mapped into a temp dir, so the same lock and the same
requirements/install.sh run as in the image. Then: torch and transformers must be absent; the
image's ENTRYPOINT+CMD starts on a free loopback port with the image's ENV against BUNDLE_DIR;
/health/ready, the HEALTHCHECK command, /models and a real /predict (both tasks) must pass; the
STOPSIGNAL must stop it cleanly. Prints the venv size, i.e. the image's payload over its base.

Usage: python .ci/replay_serve_install.py [BUNDLE_DIR]   (default exported/)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfile_stages import Stage, env_of, exec_form, healthcheck, parse
from local_server import free_port, http, wait_ready
from served_pages import check_pages

ROOT = Path(__file__).resolve().parents[1]
BUILD_STAGE, RUNTIME_STAGE = "build-cpu", "cpu"
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[co]")  # as .dockerignore
SHARED = Path(os.environ.get("FUSIONSERVE_SHARED_DIR", ROOT.parent / "shared"))
SAMPLE_TEXT = {
    "medpix": "Axial non-contrast CT of the head demonstrates bilateral subdural hematomas.",
    "wound": "A deep wound on the foot with red, swollen surrounding skin.",
}


def fail(message: str) -> None:
    print(f"replay: FAIL: {message}", file=sys.stderr)
    raise SystemExit(1)


def step(message: str) -> None:
    print(f"replay: {message}", flush=True)


class PathMap:
    """Container absolute paths -> directories under the replay's temp root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefixes: dict[str, Path] = {}

    def add(self, container_path: str) -> Path:
        host = self.root / container_path.strip("/").replace("/", "_")
        self.prefixes[container_path.rstrip("/")] = host
        return host

    def host(self, container_path: str) -> Path:
        for prefix, host in self.prefixes.items():
            if container_path == prefix or container_path.startswith(prefix + "/"):
                return host / container_path[len(prefix) :].lstrip("/")
        return self.add(container_path)

    def text(self, text: str) -> str:
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            pattern = rf"(?<![\w./-]){re.escape(prefix)}(?=$|[/\s:\"'])"
            text = re.sub(pattern, str(self.prefixes[prefix]), text)
        return text


def pick_python() -> str:
    """The lock is for CPython 3.11, as the image's base is."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        fail("needs CPython 3.11 (the image's interpreter) to replay the install")
    return str(found)


def replay_build(stage: Stage, paths: PathMap) -> None:
    workdir: Path | None = None
    env = {**os.environ, "PYTHON": pick_python(), "PIP_QUIET": "1", **env_of(stage)}
    for instruction in stage.instructions:
        keyword, args = instruction.keyword, instruction.args
        if keyword == "ENV":
            continue  # collected above
        if keyword == "WORKDIR":
            workdir = paths.host(args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            if args.startswith("--"):
                fail(f"unsupported COPY option in {stage.name}: {args}")
            *sources, dest = args.split()
            if workdir is None:
                fail("COPY before WORKDIR")
            assert workdir is not None
            target = workdir / dest
            into_dir = dest.endswith("/") or len(sources) > 1
            for source in sources:
                src = ROOT / source.rstrip("/")
                if src.is_dir():  # Docker copies a directory's contents
                    shutil.copytree(src, target, dirs_exist_ok=True, ignore=IGNORED)
                else:
                    dst = target / src.name if into_dir else target
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        elif keyword == "RUN":
            command = paths.text(args)
            step(f"RUN {command}")
            subprocess.run(["sh", "-c", command], cwd=workdir, env=env, check=True)
        else:
            fail(f"instruction {keyword} in {stage.name} is not replayable; extend the replay")


def pick_bundle(bundle_dir: Path) -> tuple[str, str, list[str]]:
    """A student bundle to query: (name, task set, task names)."""
    manifests = sorted(bundle_dir.glob("*/manifest.json"))
    if not manifests:
        fail(f"no bundles (*/manifest.json) under {bundle_dir}")
    loaded = [json.loads(m.read_text()) for m in manifests]
    students = [m for m in loaded if m.get("role") == "student"] or loaded
    chosen = students[0]
    return chosen["name"], chosen["task_set"], [t["name"] for t in chosen["tasks"]]


def sample_image(task_set: str) -> Path:
    """A real image for the task set: examples/ first, then the shared dataset."""
    for candidate in sorted((ROOT / "examples").glob(f"{task_set}-*")):
        return candidate
    dataset = {"medpix": "medpix-2.0", "wound": "wound-1-0"}[task_set]
    for candidate in sorted((SHARED / "datasets" / dataset / "images").rglob("*.*")):
        if candidate.suffix.lower() in {".png", ".jpg", ".jpeg"}:
            return candidate
    fail(f"no real {task_set} image in examples/ or {SHARED}/datasets")
    raise AssertionError


def size_mb(path: Path) -> float:
    files = (p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return sum(p.stat().st_size for p in files) / 1e6


def serve_and_check(runtime: Stage, paths: PathMap, venv: Path, bundle_dir: Path) -> None:
    entrypoint = exec_form(runtime.last("ENTRYPOINT") or "[]")
    command = exec_form(runtime.last("CMD") or "[]")
    stop_signal = getattr(signal, runtime.last("STOPSIGNAL") or "SIGTERM")
    port = free_port()
    env = {k: paths.text(v) for k, v in env_of(runtime, {"PATH": os.environ["PATH"]}).items()}
    env |= {
        "FUSIONSERVE_BUNDLE_DIR": str(bundle_dir),
        "FUSIONSERVE_HOST": "127.0.0.1",  # CI traffic stays on loopback
        "FUSIONSERVE_PORT": str(port),
        "HOME": str(paths.root),
    }
    name, task_set, tasks = pick_bundle(bundle_dir)
    image = sample_image(task_set)
    base = f"http://127.0.0.1:{port}"
    argv = entrypoint + command
    if shutil.which(argv[0], path=env["PATH"]) != str(venv / "bin" / argv[0]):
        fail(f"ENTRYPOINT {argv[0]!r} does not resolve to the venv's console script")
    step(f"start {' '.join(argv)} on {base} with bundles {bundle_dir}")
    server = subprocess.Popen(argv, env=env, cwd=paths.root)
    try:
        wait_ready(base, server)
        _, probe = healthcheck(runtime)
        subprocess.run(probe, env=env, check=True, timeout=10)
        step("HEALTHCHECK command passed")
        problems = check_pages(base)  # the package's data files made it into the install
        if problems:
            fail("; ".join(problems))
        step("/, /docs, /redoc and every asset they name answer 200")
        status, body = http("GET", f"{base}/models")
        if status != 200:
            fail(f"/models answered {status}: {body[:300]!r}")
        payload = {
            "image": base64.b64encode(image.read_bytes()).decode(),
            "text": SAMPLE_TEXT[task_set],
            "model": name,
        }
        status, body = http("POST", f"{base}/predict", json.dumps(payload).encode())
        if status != 200:
            fail(f"/predict answered {status}: {body[:300]!r}")
        predictions = json.loads(body)["predictions"]
        if sorted(predictions) != sorted(tasks):
            fail(f"/predict tasks {sorted(predictions)} != bundle tasks {sorted(tasks)}")
        for task, out in predictions.items():
            probs = out["probabilities"]
            if out["label"] not in probs or abs(sum(probs.values()) - 1.0) > 1e-3:
                fail(f"task {task}: malformed prediction {out}")
        step(
            f"/predict 200 for {name} on {image.name}: "
            + ", ".join(f"{t}={p['label']}" for t, p in predictions.items())
        )
    finally:
        if server.poll() is None:
            server.send_signal(stop_signal)
        try:
            code = server.wait(timeout=float(env.get("FUSIONSERVE_DRAIN_TIMEOUT_S", "20")) + 15)
        except subprocess.TimeoutExpired:
            server.kill()
            fail(f"server ignored {stop_signal.name}")
    # uvicorn re-raises the stop signal after a graceful shutdown, so -SIGTERM is clean too.
    if code not in (0, -stop_signal):
        fail(f"server exited with {code} after {stop_signal.name}")
    step(f"{stop_signal.name} stopped the server cleanly")


def main(argv: list[str]) -> int:
    bundle_dir = Path(argv[1] if len(argv) > 1 else ROOT / "exported").resolve()
    pick_bundle(bundle_dir)  # fail fast, before the install
    _, stages = parse(ROOT / "Dockerfile")
    build, runtime = stages[BUILD_STAGE], stages[RUNTIME_STAGE]
    with tempfile.TemporaryDirectory(prefix="fusionserve-replay-") as tmp:
        paths = PathMap(Path(tmp))
        copies = [a.split() for a in runtime.all("COPY") if a.startswith(f"--from={BUILD_STAGE}")]
        if len(copies) != 1 or copies[0][1] != copies[0][2]:
            fail(f"expected one 'COPY --from={BUILD_STAGE} VENV VENV' in {RUNTIME_STAGE}")
        venv = paths.add(copies[0][1])
        replay_build(build, paths)
        python = venv / "bin" / "python"
        for module in ("torch", "transformers"):
            probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
            if probe.returncode == 0:
                fail(f"{module} is importable from the serving install")
        step("torch and transformers are absent")
        serve_and_check(runtime, paths, venv, bundle_dir)
        venv_mb = size_mb(venv)
        # .dockerignore keeps teacher bundles out of the image.
        bundles_mb = sum(
            size_mb(d) for d in bundle_dir.iterdir() if d.is_dir() and "-teacher" not in d.name
        )
        print(
            f"replay: serving venv installed size: {venv_mb:.0f} MB; CPU image ~= "
            f"{runtime.base} (~130 MB) + venv {venv_mb:.0f} MB + student bundles "
            f"{bundles_mb:.0f} MB = ~{130 + venv_mb + bundles_mb:.0f} MB"
        )
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
