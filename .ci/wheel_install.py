"""Install fusionserve the way the README does, outside the checkout, and prove what users get.

The tests import the checkout, so a file missing from the package passes them all (the demo page
answered 500 from a real install). This builds the wheel from the tracked files (a fresh clone's),
checks every tracked data file is in it, installs it into a clean venv with
`pip install -c requirements/serve.lock 'WHEEL[serve]'` (cwd outside the checkout, so the
checkout is not importable), starts that venv's `fusionserve serve` on BUNDLE_DIR, checks every
asset /, /docs and /redoc name answers 200, and runs the Chromium page test (upload, predict,
rendered labels) against that server through FUSIONSERVE_TEST_BASE_URL.

Usage: python .ci/wheel_install.py BUNDLE_DIR   (a tiny bundle dir: tests/fixtures/tiny_bundle.py)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import fail as _fail
from local_server import free_port, wait_ready
from served_pages import check_pages

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "models", "fusionserve")
# The page test's cases that need only a running server (the API-key case starts its own).
PAGE_TESTS = (
    "tests/app/ui/test_page_browser.py::test_prediction_renders_the_apis_answer",
    "tests/app/ui/test_page_browser.py::test_api_errors_show_their_message",
)


def fail(message: str) -> None:
    _fail(message, "wheel")


def step(message: str) -> None:
    print(f"wheel: {message}", flush=True)


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


def pip(python: Path, *args: str, cwd: Path) -> None:
    subprocess.run([python, "-m", "pip", "install", "-q", *args], cwd=cwd, check=True)


def new_venv(path: Path) -> Path:
    interpreter = shutil.which("python3.11") or sys.executable
    subprocess.run([interpreter, "-m", "venv", path], check=True)
    return path / "bin" / "python"


def build_wheel(tmp: Path, files: list[str]) -> Path:
    """The wheel of a fresh clone's files, built by the pinned backend (requirements/build.lock)."""
    src = tmp / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    python = new_venv(tmp / "build-venv")
    pip(python, "--only-binary=:all:", "-r", str(ROOT / "requirements" / "build.lock"), cwd=tmp)
    out = tmp / "wheels"
    subprocess.run(
        [python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, src],
        cwd=tmp,
        check=True,
    )
    wheels = sorted(out.glob("fusionserve-*.whl"))
    if len(wheels) != 1:
        fail(f"expected one fusionserve wheel, got {wheels}")
    return wheels[0]


def check_contents(wheel: Path, files: list[str]) -> None:
    """Every tracked file under the packages (code and data) is in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    wanted = [f for f in files if f.startswith(tuple(p + "/" for p in PACKAGES))]
    missing = [f for f in wanted if f not in shipped]
    if missing:
        fail(f"{len(missing)} tracked package file(s) not in the wheel: {missing[:20]}")
    data = [f for f in wanted if not f.endswith(".py")]
    step(f"{wheel.name}: all {len(wanted)} package files shipped ({len(data)} data files)")


def install(tmp: Path, wheel: Path) -> Path:
    """The README's install, from the wheel, into a clean venv; cwd outside the checkout."""
    home = tmp / "user"
    home.mkdir()
    python = new_venv(home / ".venv")
    lock = ROOT / "requirements" / "serve.lock"
    pip(python, "-c", str(lock), f"{wheel}[serve]", cwd=home)
    where = subprocess.run(
        [python, "-c", "import app; print(app.__file__)"],
        cwd=home, capture_output=True, text=True, check=True, env=clean_env(),
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(home / ".venv")):
        fail(f"`import app` resolves to {where}, not the installed package")
    step(f"installed into {home / '.venv'}; app imports from {where}")
    return home


def clean_env() -> dict[str, str]:
    """This environment without anything that would put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"FUSIONSERVE_INTRA_OP_THREADS": "1"}


def run_page_tests(base: str) -> None:
    """The browser tests, from the checkout's test venv, against the installed server. CI=true:
    a missing browser fails instead of skipping (a skipped check proves nothing)."""
    env = {**os.environ, "FUSIONSERVE_TEST_BASE_URL": base, "CI": "true"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PAGE_TESTS]
    if subprocess.run(argv, cwd=ROOT, env=env).returncode != 0:
        fail("the Chromium page test failed against the installed server")
    step(f"Chromium page test passed against the installed server ({len(PAGE_TESTS)} cases)")


def serve_and_check(home: Path, bundle_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        str(home / ".venv" / "bin" / "fusionserve"), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--bundle-dir", str(bundle_dir), "--log-level", "warning",
    ]  # fmt: skip
    step(f"start the installed fusionserve on {base} with bundles {bundle_dir}")
    server = subprocess.Popen(argv, cwd=home, env=clean_env())
    try:
        wait_ready(base, server)
        problems = check_pages(base)
        if problems:
            fail("; ".join(problems))
        step("/, /docs, /redoc and every asset they name answer 200")
        run_page_tests(base)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("server ignored SIGTERM")
    if code not in (0, -signal.SIGTERM):
        fail(f"server exited with {code} after SIGTERM")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        fail("usage: python .ci/wheel_install.py BUNDLE_DIR")
    bundle_dir = Path(argv[1]).resolve()
    files = tracked_files()
    with tempfile.TemporaryDirectory(prefix="fusionserve-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        wheel = build_wheel(tmp, files)
        check_contents(wheel, files)
        home = install(tmp, wheel)
        serve_and_check(home, bundle_dir)
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
