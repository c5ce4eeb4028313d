"""Watch mode over real HTTP: a version renamed into place is loaded while clients keep getting
200; a copy stopped half-way is never loaded (the old version answers on); finishing it loads it."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from app.bundle_watch import fingerprint
from app.contract.manifest import MODEL_FILE, Manifest
from app.main import create_app
from tests.app.helpers import tiny_settings
from tests.app.live_server import live_server
from tests.app.reliability.load import Answer, for_seconds, hammer

MODEL = "medpix-student"


@pytest.fixture()
def watched(tiny_bundle_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(bundle root with medpix-student as exported, a second version of it elsewhere)."""
    from tests.fixtures.tiny_bundle import build_tiny_bundle

    root = tmp_path / "exported"
    shutil.copytree(tiny_bundle_dir / MODEL, root / MODEL)
    other = build_tiny_bundle(tmp_path / "next", "medpix", "student", seed=21, dynamic_text=True)
    return root, other


def test_fingerprint_sees_renames_and_needs_a_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    assert fingerprint(folder) is None
    (folder / "manifest.json").write_text("{}")
    first = fingerprint(folder)
    moved = tmp_path / "n"
    folder.rename(moved)
    shutil.copytree(moved, folder)
    assert first is not None and fingerprint(folder) != first
    assert fingerprint(tmp_path / "absent") is None


async def version_is(client: httpx.AsyncClient, version: str, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if (await client.get(f"/models/{MODEL}")).json()["version"] == version:
            return True
        await asyncio.sleep(0.05)
    return False


def test_rename_into_place_loads_and_a_partial_copy_never_does(
    watched: tuple[Path, Path],
) -> None:
    root, other = watched
    old, new = Manifest.load(root / MODEL).version, Manifest.load(other).version
    settings = tiny_settings(root, models=[MODEL], watch_bundles=True, watch_interval_s=0.1)
    with live_server(create_app(settings)) as base:

        async def main() -> list[Answer]:
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(base, (MODEL,), 8, stop))
            async with httpx.AsyncClient(base_url=base, timeout=30) as admin:
                # a partial copy: manifest and tokenizer whole, the graph cut in half
                (root / MODEL).rename(root / ".old")
                shutil.copytree(other, root / MODEL, ignore=shutil.ignore_patterns(MODEL_FILE))
                graph = (other / MODEL_FILE).read_bytes()
                (root / MODEL / MODEL_FILE).write_bytes(graph[: len(graph) // 2])
                assert not await version_is(admin, new, within_s=1.0)
                assert (await admin.get("/health/ready")).status_code == 200
                # the copy completes: it is loaded
                (root / MODEL / MODEL_FILE).write_bytes(graph)
                assert await version_is(admin, new, within_s=10.0)
                # the old version renamed back into place (the deploy's rollback)
                (root / MODEL).rename(root / ".new")
                (root / ".old").rename(root / MODEL)
                assert await version_is(admin, old, within_s=10.0)
                await for_seconds(0.2, stop)
            return await load

        answers = asyncio.run(asyncio.wait_for(main(), 60))
    assert answers and all(a.status == 200 for a in answers), {a.code for a in answers}
    assert {a.version for a in answers} == {old, new}
