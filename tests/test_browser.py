"""The HTML pages as a person sees them: opened in headless Chromium, no script errors, no
network requests, the score, the layer table and the plots visible; screenshots kept in
tests/artifacts/ (listed at the end of the run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import Chromium, find_chromium

from grader.report.model import SubmissionReport
from grader.report.writers import SUMMARY_PAGE_NAME, feedback_pages, write_feedback_pages, write_summary_page

FIXTURE = Path(__file__).parent / "fixtures" / "report_model_details.json"
MISSING = ("chromium is not installed, so the browser tests cannot run: `apt-get install -y chromium` "
           "(.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING + "; in CI this is an error, not a skip")
        pytest.skip(MISSING)
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


@pytest.fixture
def fixture_pages(tmp_path) -> dict[str, Path]:
    report = SubmissionReport.from_dict(json.loads(FIXTURE.read_text("utf-8")))
    pages = write_feedback_pages(tmp_path, report, "Exercise 06: feedback")
    pages["summary"] = write_summary_page(tmp_path, [report], "Exercise 06: batch summary")
    return pages


def assert_clean(visit) -> None:
    assert visit.script_errors == [], visit.script_errors
    assert visit.requests == [], f"the page is not self-contained: {visit.requests}"


def test_feedback_page_shows_score_layer_table_and_plots(browser, fixture_pages) -> None:
    visit = browser.open(fixture_pages["instructor"])
    assert_clean(visit)
    seen = browser.measure("#total-score", "#layer-table", "#layer-table td.mismatch", "#training-curve svg",
                           "#training-curve polyline", "#lost-points", "#cells")
    assert all(seen[s] and seen[s]["visible"] for s in seen), seen
    assert seen["#total-score"]["text"].startswith("44 / 100")
    assert seen["#layer-table"]["height"] > 13 * 15  # thirteen rows, each readable
    assert seen["#training-curve svg"]["width"] >= 300 and seen["#training-curve svg"]["height"] >= 200
    assert seen["#training-curve polyline"]["width"] > 100  # a drawn line, not an empty box
    assert "Cell 13 raised NameError" in seen["#cells"]["text"]
    path = browser.screenshot("feedback_fixture_instructor")
    assert path.stat().st_size > 20_000


def test_student_copy_in_the_browser_hides_hidden_checks(browser, fixture_pages) -> None:
    visit = browser.open(fixture_pages["student"])
    assert_clean(visit)
    text = browser.evaluate("document.body.innerText")
    assert "A4.explicit_stride" not in text and "hidden check(s)" in text
    browser.screenshot("feedback_fixture_student")


def test_summary_page_sorts_without_errors(browser, fixture_pages) -> None:
    visit = browser.open(fixture_pages["summary"])
    assert_clean(visit)
    seen = browser.measure("#histogram svg", "#pass-rates", "#students a")
    assert all(seen[s] and seen[s]["visible"] for s in seen), seen
    bars = browser.evaluate("Array.from(document.querySelectorAll('#histogram rect.bar-rect'))"
                            ".map(r => Math.round(r.getBoundingClientRect().height))")
    assert len(bars) == 10 and sum(1 for b in bars if b > 0) == 1  # one notebook, one non-empty band
    browser.evaluate("document.querySelector('#pass-rates th:nth-child(4)').click()")
    first = browser.evaluate("document.querySelector('#pass-rates tbody tr td').textContent")
    assert first != "A1.lecture_examples"  # sorted by pass rate: a failing check comes first
    assert browser.open(fixture_pages["summary"]).script_errors == []


@pytest.mark.kernel
def test_real_batch_pages_in_the_browser(browser, sample_batch) -> None:
    out = sample_batch.out_dir
    summary = out / SUMMARY_PAGE_NAME
    visit = browser.open(summary)
    assert_clean(visit)
    seen = browser.measure("#histogram svg", "#problems", "#slowest", "#students")
    assert all(seen[s] and seen[s]["visible"] for s in seen), seen
    assert "fails_cell_raises" in seen["#problems"]["text"]
    links = browser.evaluate("Array.from(document.querySelectorAll('#students a')).map(a => a.href)")
    assert len(links) == 2 * len(sample_batch.reports)
    browser.screenshot("summary_sample_batch")

    page = feedback_pages(out, "fails_cell_raises")["instructor"]
    assert page.as_uri() in links
    visit = browser.open(page)
    assert_clean(visit)
    seen = browser.measure("#total-score", "#cells", "#lost-points")
    assert all(seen[s] and seen[s]["visible"] for s in seen), seen
    report = next(r for r in sample_batch.reports if r.submission == "fails_cell_raises")
    assert seen["#total-score"]["text"].startswith(f"{report.score:g} / {report.max_score:g}")
    assert "def maxpool2d" in seen["#cells"]["text"]
    browser.screenshot("feedback_sample_fails_cell_raises")
