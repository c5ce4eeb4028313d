"""The fault-injection wrapper: refused without the test-only flag, parsed strictly, and each kind
does what it says to a real graph's batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from app.bundle_loader import load_bundle
from app.fault_injection import FaultInjector, InjectedFault, parse
from app.settings import FAULTS_FLAG, Settings
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, tiny_settings


def test_the_setting_alone_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULTS_FLAG, raising=False)
    monkeypatch.setenv("FUSIONSERVE_FAULT_INJECTION", "medpix-student=raise")
    with pytest.raises(ValidationError, match=FAULTS_FLAG):
        Settings()
    monkeypatch.setenv(FAULTS_FLAG, "yes")  # only exactly "1" counts
    with pytest.raises(ValidationError, match="tests only"):
        Settings()
    monkeypatch.setenv(FAULTS_FLAG, "1")
    assert Settings().fault_injection == ["medpix-student=raise"]


def test_specs_parse_strictly() -> None:
    faults = parse(["a=hang:1", "b=raise_1_in_10"])
    assert (faults["a"].kind, faults["a"].batches) == ("hang", 1)
    assert (faults["b"].kind, faults["b"].batches) == ("raise_1_in_10", None)
    for bad in ("a", "a=explode", "=raise", "a=raise:x"):
        with pytest.raises(ValueError):
            parse([bad])


def test_each_kind_on_a_real_batch(tiny_bundle_dir: Path) -> None:
    bundle = load_bundle(tiny_bundle_dir / "medpix-student", tiny_settings(tiny_bundle_dir))
    items = [bundle.prepare(MEDPIX_IMAGE.read_bytes(), MEDPIX_TEXT)] * 2
    specs = ["r=raise:2", "f=raise_1_in_10", "n=nan:1", "s=slow:1", "h=hang:1"]
    injector = FaultInjector(parse(specs))
    run = {name: injector.wrap(name, bundle.run_batch) for name in "rfnsh"}  # type: ignore[arg-type]

    for _ in range(2):
        with pytest.raises(InjectedFault):
            run["r"](items)
    assert len(run["r"](items)) == 2  # the fault's 2 batches are over
    outcomes = []
    for _ in range(20):
        try:
            run["f"](items)
            outcomes.append(True)
        except InjectedFault:
            outcomes.append(False)
    assert outcomes.count(False) == 2 and not outcomes[9] and not outcomes[19]
    assert all(np.isnan(v).all() for v in run["n"](items)[0].values())
    assert all(np.isfinite(v).all() for v in run["n"](items)[0].values())
    start = time.monotonic()
    run["s"](items)
    assert time.monotonic() - start >= 2.0
    hung = threading.Thread(target=run["h"], args=(items,))
    hung.start()
    hung.join(0.3)
    assert hung.is_alive()
    injector.release()
    hung.join(10)
    assert not hung.is_alive()
    assert injector.wrap("other", bundle.run_batch) == bundle.run_batch  # type: ignore[arg-type]
