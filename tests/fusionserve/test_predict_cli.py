"""`fusionserve predict` against a real server: one case as a table (or JSON) equal to the API's
answer; a set of cases with per-case errors recorded, resumed after a stop (a torn last line
included) without scoring any case twice; usage problems refused before any request."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import httpx
import pytest

from fusionserve.cli import main
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, WOUND_IMAGE
from tests.app.servers import free_port


def api_labels(base: str, image: Path, text: str) -> dict[str, str]:
    files = {"image": (image.name, image.read_bytes())}
    body = httpx.post(f"{base}/predict", files=files, data={"text": text}).json()
    return {task: p["label"] for task, p in body["predictions"].items()}


def test_one_case_prints_a_table(server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", str(MEDPIX_IMAGE), "--text", MEDPIX_TEXT, "--url", server_url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("model medpix-student (student, ")
    for task, label in api_labels(server_url, MEDPIX_IMAGE, MEDPIX_TEXT).items():
        assert f"{task}: {label} " in out
        assert f"  * {label} " in out  # the top label is marked in its table
    assert "leaned on: image " in out and "server time: " in out

    assert main([*argv, "--json", "--model", "medpix", "--role", "teacher"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["model"]["name"] == "medpix-teacher"


@pytest.fixture
def case_set(tmp_path: Path) -> tuple[Path, Path]:
    """5 cases: 3 real images, one missing file, one file that is not an image."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(MEDPIX_IMAGE, images / "a.png")
    shutil.copy(MEDPIX_IMAGE, images / "b.png")
    shutil.copy(WOUND_IMAGE, images / "c.jpg")
    (images / "broken.png").write_bytes(b"this is not a PNG")
    rows = [
        ("case-1", "a.png", MEDPIX_TEXT),
        ("case-2", "b", "Axial MR of the brain."),  # a file stem, as MedPix lists its images
        ("case-3", "c.jpg", ""),
        ("case-4", "missing.png", "x"),
        ("case-5", "broken.png", "y"),
    ]
    path = tmp_path / "cases.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "file", "caption"])
        writer.writerows(rows)
    return path, images


def set_argv(base: str, cases: Path, images: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict", "--csv", str(cases), "--images", str(images), "--out", str(out),
        "--url", base, "--id-column", "case_id", "--image-column", "file",
        "--text-column", "caption", "--concurrency", "3", *extra,
    ]  # fmt: skip


def records(out: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_id = {r["id"]: r for r in lines}
    assert len(by_id) == len(lines), "a case was written twice"
    return by_id


def test_a_set_records_every_case_and_resumes(
    server_url: str, case_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases, images = case_set
    out = tmp_path / "results.jsonl"
    assert main(set_argv(server_url, cases, images, out)) == 0
    err = capsys.readouterr().err
    assert "5/5" in err  # the progress bar
    assert "5 cases in " in err and "2 errors, 0 already in" in err
    got = records(out)
    assert [got[f"case-{i}"]["status"] for i in range(1, 6)] == ["ok"] * 3 + ["error"] * 2
    assert got["case-4"]["error"] == {
        "code": "image_not_found",
        "message": got["case-4"]["error"]["message"],
    }
    assert got["case-5"]["error"]["code"] == "unsupported_image"
    assert got["case-5"]["error"]["http_status"] == 415
    expected = api_labels(server_url, MEDPIX_IMAGE, MEDPIX_TEXT)
    assert {t: p["label"] for t, p in got["case-1"]["predictions"].items()} == expected
    assert got["case-3"]["model"]["name"] == "medpix-student" and got["case-3"]["request_id"]
    assert MEDPIX_TEXT not in out.read_text()  # texts are not copied into the results

    # A rerun skips everything already written.
    before = out.read_text()
    assert main(set_argv(server_url, cases, images, out, "--no-progress")) == 0
    assert "0 cases in " in capsys.readouterr().err and out.read_text() == before

    # A run stopped mid-write: two cases lost, the last line torn. Only those run again.
    kept = before.splitlines()[:3]
    out.write_text("\n".join(kept) + "\n" + before.splitlines()[3][:25])
    assert main(set_argv(server_url, cases, images, out, "--no-progress")) == 0
    assert "2 cases in " in capsys.readouterr().err
    assert set(records_ignoring_torn(out)) == {f"case-{i}" for i in range(1, 6)}

    # --retry-errors runs the failed cases again, and only those.
    assert main(set_argv(server_url, cases, images, out, "--no-progress", "--retry-errors")) == 0
    assert "2 cases in " in capsys.readouterr().err
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines() if line.endswith("}")]
    assert sorted(i for i in ids if ids.count(i) > 1) == ["case-4"] * 2 + ["case-5"] * 2


def records_ignoring_torn(out: Path) -> dict[str, dict]:
    good = []
    for line in out.read_text().splitlines():
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    ids = [r["id"] for r in good]
    assert len(ids) == len(set(ids)), "a case was written twice"
    return {r["id"]: r for r in good}


def test_jsonl_cases_with_nested_text(server_url: str, tmp_path: Path) -> None:
    images = MEDPIX_IMAGE.parent
    cases = tmp_path / "cases.jsonl"
    rows = [{"image": MEDPIX_IMAGE.stem, "Description": {"Caption": MEDPIX_TEXT}}]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    argv = ["predict", "--csv", str(cases), "--images", str(images), "--out", str(out),
            "--url", server_url, "--text-column", "Description.Caption",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (record,) = records(out).values()
    assert record["status"] == "ok" and record["id"] == MEDPIX_IMAGE.stem
    assert {t: p["label"] for t, p in record["predictions"].items()} == api_labels(
        server_url, MEDPIX_IMAGE, MEDPIX_TEXT
    )


def test_usage_problems_are_refused_before_any_request(
    case_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases, images = case_set
    out = tmp_path / "r.jsonl"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: any request would fail later
    problems = {
        "give an IMAGE": ["predict", "--url", url],
        "image not found": ["predict", str(tmp_path / "none.png"), "--url", url],
        "needs --images": ["predict", "--csv", str(cases), "--url", url],
        "no column 'image'": ["predict", "--csv", str(cases), "--images", str(images),
                              "--out", str(out), "--url", url],
        "--concurrency must be": [*set_argv(url, cases, images, out), "--concurrency", "0"],
        "cases file not found": ["predict", "--csv", str(tmp_path / "x.csv"), "--images",
                                 str(images), "--out", str(out), "--url", url],
    }  # fmt: skip
    for message, argv in problems.items():
        assert main(argv) == 2, message
        assert message in capsys.readouterr().err
    cases.write_text("case_id,file,caption\nsame,a.png,x\nsame,b.png,y\n")
    assert main(set_argv(url, cases, images, out)) == 2
    assert "case id 'same' repeats line 2" in capsys.readouterr().err
    assert not out.exists()


def test_an_unreachable_server_stops_before_scoring(
    case_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases, images = case_set
    url = f"http://127.0.0.1:{free_port()}"
    assert main([*set_argv(url, cases, images, tmp_path / "r.jsonl"), "--retries", "0"]) == 1
    assert "connection_error: cannot reach the server" in capsys.readouterr().err


EXPORTED = Path(__file__).resolve().parents[2] / "exported"


def test_the_table_warns_about_an_out_of_domain_image(capsys: pytest.CaptureFixture[str]) -> None:
    """The committed MedPix student's domain check, printed: a wound photo is named as not a
    CT/MR slice; its own example gets the scores line and no warning."""
    from tests.app.servers import running_server

    env = {"FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(EXPORTED, env=env) as (_, base):
        argv = ["predict", "--text", MEDPIX_TEXT, "--url", base]
        assert main([*argv[:1], str(WOUND_IMAGE), *argv[1:]]) == 0
        flagged = capsys.readouterr().out
        assert main([*argv[:1], str(MEDPIX_IMAGE), *argv[1:]]) == 0
        own = capsys.readouterr().out
    assert "WARNING: out of domain: this image does not look like a CT/MR slice" in flagged
    assert "(low confidence)" in flagged and "domain check (score, out above 1): image " in own
    assert "WARNING" not in own
