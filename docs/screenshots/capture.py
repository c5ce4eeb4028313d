"""Regenerate docs/screenshots/demo-page.png: the demo page in Debian's chromium against a real
`fusionserve serve` over exported/ (the MedPix student), scoring the README's example case.

    PYTHONPATH=. python docs/screenshots/capture.py
"""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, REPO_ROOT
from tests.app.servers import running_server
from tests.app.ui.browser import browser_page

OUT = Path(__file__).with_name("demo-page.png")


def main() -> None:
    env = {"FUSIONSERVE_MODELS": "medpix-student,medpix-teacher,wound-student"}
    with running_server(REPO_ROOT / "exported", env=env, ready_timeout_s=180) as (_, base):
        with browser_page(base, width=900, height=900) as (page, log):
            page.goto(base + "/")
            page.wait_for_selector("#model option[value='medpix']", state="attached")
            page.set_input_files("#image", str(MEDPIX_IMAGE))
            page.fill("#text", MEDPIX_TEXT)
            page.select_option("#model", "medpix")
            page.click("#submit")
            page.wait_for_selector(".task[data-task='location'] .bar.top")
            page.screenshot(path=str(OUT), full_page=True)
        log.assert_self_contained()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
