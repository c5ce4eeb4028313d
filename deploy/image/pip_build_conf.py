"""Write the registry part of this machine's pip configuration for an image build's pip.

The build's pip runs in a container and sees none of this machine's pip files, PIP_* variables
or CA bundle. This keeps the settings that reach a network registry (index URLs, trusted hosts,
proxy, timeouts), taken from `pip config list` (files and environment, in pip's own order), and
copies the CA bundle that pip here trusts. Host-only settings (find-links, file:// indexes,
constraints) are dropped: the container does not have those paths. Nothing is written into the
repository, so no registry address is ever committed.

Usage: python deploy/image/pip_build_conf.py CONF_OUT CA_OUT CA_PATH_IN_BUILD
  writes the pip.conf (its `cert` is CA_PATH_IN_BUILD) and a copy of the CA bundle
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

NETWORK_KEYS = {
    "index-url",
    "extra-index-url",
    "trusted-host",
    "proxy",
    "timeout",
    "default-timeout",
    "retries",
}
DEFAULT_CA = "/etc/ssl/certs/ca-certificates.crt"


def pip_settings() -> dict[str, str]:
    """{option: value} as pip here resolves it (later sources override earlier ones)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        name, sep, value = line.partition("=")
        if sep:  # name is "<section or :env:>.<option>"; value is a Python repr
            settings[name.rpartition(".")[2]] = str(ast.literal_eval(value))
    return settings


def main(conf_out: Path, ca_out: Path, ca_in_build: str) -> None:
    settings = pip_settings()
    ca = settings.get("cert") or os.environ.get("SSL_CERT_FILE") or DEFAULT_CA
    lines = ["[global]", f"cert = {ca_in_build}"]
    for key, value in settings.items():
        if key not in NETWORK_KEYS:
            continue
        if key.endswith("index-url"):  # keep network indexes only
            value = " ".join(u for u in value.split() if u.startswith(("http://", "https://")))
        if value:
            lines.append(f"{key} = {value}")
    conf_out.parent.mkdir(parents=True, exist_ok=True)
    conf_out.write_text("\n".join(lines) + "\n")
    shutil.copyfile(ca, ca_out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
