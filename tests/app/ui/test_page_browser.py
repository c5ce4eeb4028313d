"""The demo page in Debian's chromium against a real server: upload a real image and text, the
rendered top labels, probabilities and badges equal the API's own answer; API errors show their
message; with an API key the page asks for it and keeps it out of storage. Outside requests are
blocked and must not be attempted; the CSP must not block anything the page needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE, WOUND_TEXT
from tests.app.servers import running_server
from tests.app.ui.browser import PageLog, browser_page

pytestmark = pytest.mark.slow


def api_answer(base: str, image: Path, text: str, model: str) -> dict:
    files = {"image": (image.name, image.read_bytes())}
    response = httpx.post(f"{base}/predict", files=files, data={"text": text, "model": model})
    assert response.status_code == 200, response.text
    return response.json()


def submit(page: object, image: Path, text: str, model: str) -> None:
    page.wait_for_selector(f"#model option[value='{model}']", state="attached")  # type: ignore[attr-defined]
    page.set_input_files("#image", str(image))  # type: ignore[attr-defined]
    page.fill("#text", text)  # type: ignore[attr-defined]
    page.select_option("#model", model)  # type: ignore[attr-defined]
    page.click("#submit")  # type: ignore[attr-defined]


def rendered(page: object) -> dict[str, dict]:
    """Per task: the highlighted label, every label's shown percentage and the badge."""
    return page.evaluate(  # type: ignore[attr-defined]
        """() => Object.fromEntries([...document.querySelectorAll('.task')].map((t) => [
            t.dataset.task,
            {top: [...t.querySelectorAll('.bar.top .label')].map((e) => e.textContent),
             shown: Object.fromEntries([...t.querySelectorAll('.bar')].map((b) => [
                 b.querySelector('.label').textContent, b.querySelector('.value').textContent])),
             fill: t.querySelector('.bar.top .fill').getBoundingClientRect().width,
             badge: !!t.querySelector('.badge')}]))"""
    )


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> object:
    """A checkout server over the tiny bundles; or, with FUSIONSERVE_TEST_BASE_URL, a server
    started elsewhere on them (.ci/wheel_install.py: the installed wheel's)."""
    if base := os.environ.get("FUSIONSERVE_TEST_BASE_URL"):
        yield base.rstrip("/")
        return
    with running_server(request.getfixturevalue("tiny_bundle_dir")) as (_, base):
        yield base


def test_prediction_renders_the_apis_answer(server: str, tmp_path: Path) -> None:
    cases = [(MEDPIX_IMAGE, MEDPIX_TEXT, "medpix"), (WOUND_IMAGE, WOUND_TEXT, "wound-student")]
    with browser_page(server) as (page, log):
        page.goto(server + "/")
        for image, text, model in cases:
            expected = api_answer(server, image, text, model)
            submit(page, image, text, model)
            page.wait_for_selector(f".task[data-task='{next(iter(expected['predictions']))}']")
            assert page.is_visible("#preview")
            shown = rendered(page)
            assert set(shown) == set(expected["predictions"])
            for task, out in expected["predictions"].items():
                assert shown[task]["top"] == [out["label"]]
                assert shown[task]["shown"] == {
                    label: f"{100 * p:.1f}%" for label, p in out["probabilities"].items()
                }
                assert shown[task]["fill"] > 0  # the bar is drawn (CSSOM width under the CSP)
                assert shown[task]["badge"] == out["low_confidence"]
            weights = expected["modality_weights"]
            assert page.inner_text("#w-image") == f"image {100 * weights['image']:.1f}%"
            assert page.inner_text("#w-text") == f"text {100 * weights['text']:.1f}%"
            assert expected["model"]["name"] in page.inner_text("#model-used")
            assert "Server time" in page.inner_text("#timing")
            assert "Server-Timing: queue;dur=" in page.inner_text("#timing")
        shot = tmp_path / "demo-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("FUSIONSERVE_SCREENSHOT_DIR"):  # CI artefact, when asked for
            shutil.copy(shot, Path(os.environ["FUSIONSERVE_SCREENSHOT_DIR"]) / shot.name)
    log.assert_self_contained()
    assert sum(url.endswith("/predict") for url in log.requests) == len(cases)


def test_api_errors_show_their_message(server: str) -> None:
    with browser_page(server) as (page, log):
        page.goto(server + "/")
        submit(page, Path(__file__), "not an image", "medpix")  # a .py file as the image
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("unsupported_image: ")
        assert page.is_hidden("#result")
    assert any(url.endswith("/predict") for url in log.requests)
    assert [e for e in log.console_errors if "415" not in e] == []  # fetch logs the 415 itself


def test_the_page_asks_for_the_key_and_never_stores_it(tiny_bundle_dir: Path) -> None:
    env = {"FUSIONSERVE_API_KEY": "page-key-123", "FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(tiny_bundle_dir, env=env) as (_, base), browser_page(base) as (page, log):
        page.goto(base + "/")
        page.wait_for_selector("#key-box:not([hidden])")
        assert page.inner_text("#error").startswith("unauthorized: ")
        page.fill("#api-key", "wrong")
        page.click("#key-apply")
        page.wait_for_selector("#error:has-text('not valid')")  # no eval: the CSP forbids it
        page.fill("#api-key", "page-key-123")
        page.click("#key-apply")
        submit(page, MEDPIX_IMAGE, MEDPIX_TEXT, "medpix")
        page.wait_for_selector(".task[data-task='modality'] .bar.top")
        stored = page.evaluate(
            "() => [localStorage.length, sessionStorage.length, document.cookie]"
        )
        assert stored == [0, 0, ""]
        assert page.context.cookies() == []
    _assert_only_auth_errors(log)


def _assert_only_auth_errors(log: PageLog) -> None:
    """The two refused /models calls log 401s in the console; nothing else may."""
    assert not log.outside and not log.page_errors
    assert all("401" in e for e in log.console_errors), log.console_errors


EXPORTED = Path(__file__).resolve().parents[3] / "exported"


def test_a_wound_photo_sent_to_the_medpix_model_shows_the_domain_warning() -> None:
    """The committed MedPix student with its fitted domain check: its own example renders no
    warning; a wound photo (with a MedPix caption) renders one naming the image side, and the
    answer's low-confidence badges."""
    env = {"FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(EXPORTED, env=env) as (_, base), browser_page(base) as (page, log):
        page.goto(base + "/")
        submit(page, MEDPIX_IMAGE, MEDPIX_TEXT, "medpix-student")
        page.wait_for_selector(".task[data-task='modality'] .bar.top")
        assert page.is_hidden("#domain-warning")
        expected = api_answer(base, WOUND_IMAGE, MEDPIX_TEXT, "medpix-student")
        assert not expected["domain"]["image"]["in_domain"]
        submit(page, WOUND_IMAGE, MEDPIX_TEXT, "medpix-student")
        page.wait_for_selector("#domain-warning:not([hidden])")
        warning = page.inner_text("#domain-warning")
        assert "this image does not look like a CT/MR slice" in warning
        score = expected["domain"]["image"]["score"]
        assert f"score {score:.2f}" in warning
        assert "text" not in page.eval_on_selector_all(  # only the flagged side is named
            "#domain-warning p", "(ps) => ps.map((p) => p.dataset.side)"
        )
        assert all(shown["badge"] for shown in rendered(page).values())
    log.assert_self_contained()
