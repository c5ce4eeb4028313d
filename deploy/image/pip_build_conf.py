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


# `pip config list` prints "<section>.<option>='value'" sorted by name, each section already
# merged over pip's files; for `pip install`, PIP_* variables (":env:") beat the install
# section, which beats global. Other sections are other commands'.
SECTION_RANK = {"global": 0, "install": 1, ":env:": 2}


def pip_settings() -> dict[str, str]:
    """{option: value} as `pip install` here resolves it."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    if listed.returncode != 0:  # no pip here: pip's defaults, like a build with no settings
        print(f"pip_build_conf: no pip configuration ({listed.stderr.strip()})", file=sys.stderr)
        return {}
    ranked: list[tuple[int, str, str]] = []
    for line in listed.stdout.splitlines():
        name, sep, value = line.partition("=")
        section, _, option = name.rpartition(".")
        if sep and section in SECTION_RANK:
            ranked.append((SECTION_RANK[section], option, str(ast.literal_eval(value))))
    return {option: value for _, option, value in sorted(ranked)}


def main(conf_out: Path, ca_out: Path, ca_in_build: str) -> None:
    settings = pip_settings()
    ca = settings.get("cert") or os.environ.get("SSL_CERT_FILE") or DEFAULT_CA
    lines = ["[global]", f"cert = {ca_in_build}"]
    for key, value in settings.items():
        if key not in NETWORK_KEYS:
            continue
        words = value.split()  # a list may span lines in a file; one line in the output
        if key.endswith("index-url"):  # keep network indexes only
            words = [url for url in words if url.startswith(("http://", "https://"))]
        if words:
            value = " ".join(words)
            lines.append(f"{key} = {value}")
    conf_out.parent.mkdir(parents=True, exist_ok=True)
    conf_out.write_text("\n".join(lines) + "\n")
    shutil.copyfile(ca, ca_out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
