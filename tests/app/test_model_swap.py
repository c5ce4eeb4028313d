"""Hot swap under load over real HTTP: both students swapped 5 times between two versions while
16 clients ask them; no answer is anything but 200, every answer names the version that computed
it, and a version that fails verification is refused while the old one serves on."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.main import create_app
from tests.app.helpers import tiny_settings
from tests.app.live_server import live_server
from tests.app.reliability.load import Answer, for_seconds, hammer

MODELS = ("medpix-student", "wound-student")
SWAPS = 5


def point(link: Path, target: Path) -> None:
    """Switch the bundle folder `link` to `target` in one rename (as a deploy would)."""
    staging = link.with_name(f".{link.name}.next")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target, target_is_directory=True)
    os.replace(staging, link)


@pytest.fixture(scope="module")
def two_versions(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/<model> → root/versions/a/<model>; versions/b holds other weights (another seed);
    versions/bad/medpix-student has an edited tokenizer (its checksum fails)."""
    from tests.fixtures.tiny_bundle import build_tiny_bundle

    root = tmp_path_factory.mktemp("swap")
    versions = root / "versions"
    for model in MODELS:
        shutil.copytree(tiny_bundle_dir / model, versions / "a" / model)
    build_tiny_bundle(versions / "b", "medpix", "student", seed=11, dynamic_text=True)
    build_tiny_bundle(versions / "b", "wound", "student", seed=13)
    bad = versions / "bad" / "medpix-student"
    shutil.copytree(versions / "b" / "medpix-student", bad)
    with (bad / TOKENIZER_FILE).open("a", encoding="utf-8") as handle:
        handle.write(" ")
    for model in MODELS:
        point(root / model, versions / "a" / model)
    return root


def version_of(root: Path, tag: str, model: str) -> str:
    return Manifest.load(root / "versions" / tag / model).version


def rounded(probabilities: dict[str, dict[str, float]]) -> str:
    """To 4 places: batch size changes the last float bits, another version far more."""
    return repr({t: {k: round(v, 4) for k, v in p.items()} for t, p in probabilities.items()})


def check_answers(answers: list[Answer], root: Path) -> None:
    """All 200; each names one of its model's versions, and one version's answers to the same
    input are identical while the two versions' differ: the named version computed it."""
    assert answers and all(a.status == 200 for a in answers), {(a.status, a.code) for a in answers}
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in answers:
        assert a.version in {version_of(root, t, a.model) for t in "ab"}
        seen[(a.model, a.version)].add(rounded(a.probabilities))
    assert all(len(outputs) == 1 for outputs in seen.values()), seen
    for model in MODELS:
        by_version = [seen.get((model, version_of(root, t, model))) for t in "ab"]
        assert by_version[0] and by_version[1] and by_version[0] != by_version[1]


@pytest.mark.parametrize("runs", [1, 2])
def test_five_swaps_under_load_answer_200_from_the_named_version(
    two_versions: Path, runs: int
) -> None:
    root = two_versions
    settings = tiny_settings(root, models=list(MODELS), max_delay_ms=1.0, concurrent_runs=runs)
    app = create_app(settings)
    with live_server(app) as base:

        async def main() -> tuple[list[Answer], list[tuple[str, str, float, float]]]:
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(base, MODELS, 16, stop))
            swaps = []
            async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
                await asyncio.sleep(0.3)
                for i in range(SWAPS):
                    tag = "b" if i % 2 == 0 else "a"
                    for model in MODELS:
                        point(root / model, root / "versions" / tag / model)
                        began = time.monotonic()
                        r = await admin.post(f"/v2/repository/models/{model}/load")
                        assert r.status_code == 200, r.text
                        assert r.json()["version"] == version_of(root, tag, model)
                        swaps.append((model, r.json()["version"], began, time.monotonic()))
                    await asyncio.sleep(0.3)
                await for_seconds(0.1, stop)
                listed = {m["name"]: m for m in (await admin.get("/models")).json()["models"]}
                for model in MODELS:
                    assert listed[model]["version"] == version_of(root, "b", model)
                metrics = (await admin.get("/metrics")).text
            assert f'version="{version_of(root, "a", "medpix-student")}"' not in metrics
            assert f'version="{version_of(root, "b", "medpix-student")}"' in metrics
            assert 'fusionserve_model_swaps_total{model="wound-student",outcome="swapped"} 5.0' in (
                metrics
            )
            return await load, swaps

        answers, swaps = asyncio.run(asyncio.wait_for(main(), 120))
    check_answers(answers, root)
    # the switch is atomic: a request sent after a load returned runs on the new version
    for model, version, _, done in swaps:
        later = [s for s in swaps if s[0] == model and s[2] > done]
        until = later[0][2] if later else float("inf")
        window = [a for a in answers if a.model == model and done < a.sent and a.received < until]
        assert all(a.version == version for a in window)
    print(f"\nswap under load: {len(answers)} answers, all 200, {len(swaps)} loads")


def test_a_version_that_fails_verification_is_refused_and_the_old_serves(
    two_versions: Path,
) -> None:
    root = two_versions
    point(root / "medpix-student", root / "versions" / "a" / "medpix-student")
    app = create_app(tiny_settings(root, models=list(MODELS)))
    old = version_of(root, "a", "medpix-student")
    with live_server(app) as base:

        async def main() -> list[Answer]:
            stop = asyncio.Event()
            load = asyncio.create_task(hammer(base, ("medpix-student",), 8, stop))
            async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
                await asyncio.sleep(0.2)
                point(root / "medpix-student", root / "versions" / "bad" / "medpix-student")
                r = await admin.post("/v2/repository/models/medpix-student/load")
                assert r.status_code == 400 and r.headers["x-error-code"] == "load_failed"
                assert "checksum mismatch" in r.json()["error"]
                assert "the version serving is kept" in r.json()["error"]
                await for_seconds(0.3, stop)
                assert (await admin.get("/health/ready")).status_code == 200
                metrics = (await admin.get("/metrics")).text
                refused = 'fusionserve_model_swaps_total{model="medpix-student",outcome="refused"}'
                assert f"{refused} 1.0" in metrics
            return await load

        answers = asyncio.run(asyncio.wait_for(main(), 60))
    assert answers and all(a.status == 200 and a.version == old for a in answers)
    point(root / "medpix-student", root / "versions" / "a" / "medpix-student")
