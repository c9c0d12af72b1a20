"""The run report: one self-contained HTML file that opens offline and shows every section."""
import re
from pathlib import Path

import pytest

from linkage.outputs.quality import record_errors, village_report
from linkage.outputs.report import render_report
from linkage.outputs.view import RunView

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ["Summary", "Funnel: records to persons", "Blocking: candidate pairs per rule",
            "Model: m and u per comparison level", "Match weights and bands",
            "Accuracy against the truth file", "Files for the card-issuance office",
            "Data-entry quality by village", "Timings"]


def test_report_is_self_contained(office_run):
    html = (office_run.out_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html, re.IGNORECASE)
    assert "@import" not in html
    assert html.count("<svg") >= 6  # funnel, blocking, weights, histogram, villages, timings
    for title in SECTIONS:
        assert title in html, title


def test_report_states_thresholds_as_weights(office_run):
    html = (office_run.out_dir / "report.html").read_text(encoding="utf-8")
    assert "weight ≥ 4.25" in html  # log2(0.95 / 0.05)
    assert "weight ≥ -0.58" in html  # log2(0.40 / 0.60)


def test_values_from_the_data_are_escaped(office_run, tmp_path):
    view = RunView.from_result(office_run)
    errors = record_errors(view)
    villages = village_report(errors)
    villages["village"] = "<script>alert(1)</script>"
    path = render_report(view, tmp_path / "report.html", {}, villages, None, errors)
    html = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_report_renders_offline_in_chromium_without_any_request(office_run):
    from playwright.sync_api import sync_playwright

    path = (office_run.out_dir / "report.html").resolve()
    requests: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("networkidle")
            headings = page.locator("h2").all_inner_texts()
            charts = page.locator("figure svg").count()
            width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests == [path.as_uri()], requests
    for title in SECTIONS:
        assert any(h.startswith(title) for h in headings), (title, headings)
    assert charts >= 6
    assert width <= 1280  # nothing overflows the page sideways
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


def test_report_explains_every_pair_for_review(office_run):
    html = (office_run.out_dir / "report.html").read_text(encoding="utf-8")
    review, s = office_run.review, office_run.summary
    in_band = int((review["reason"] == "score in the review band").sum())
    refused = len(review) - in_band
    assert refused == s["entities"]["refused_merges"] > 0  # the demo's registry collisions
    assert "Pairs for review" in html
    assert f"<b>{in_band:,}</b> scored in the review band" in html
    assert f"<b>{refused:,}</b> scored as matches whose merge clustering refused" in html
    assert "pairs: match band, merge refused (to review)" in html  # its own funnel row
    kinds = re.findall(r"<td>merge refused: [^<]+</td><td class=\"n\">([\d,]+)</td>", html)
    assert sum(int(k.replace(",", "")) for k in kinds) == refused
    first = review.iloc[0]
    assert f"<code>{first.source_l}:{first.record_l}</code>" in html
    assert "/pair/" not in html  # no review_url in the demo config: no links


def test_review_links_are_the_apps_own_pair_addresses(office_run, tmp_path, monkeypatch):
    from dataclasses import replace

    from linkage.store.review import pair_ref
    from linkage.web.queue import url_token

    view = RunView.from_result(office_run)
    view.config = replace(view.config, spec=view.config.spec.model_copy(
        update={"review_url": "http://10.1.2.3:8000/"}))
    monkeypatch.setenv("LINKAGE_SECRET_KEY", "county-secret")
    errors = record_errors(view)
    html = render_report(view, tmp_path / "report.html", {}, village_report(errors), None,
                         errors).read_text(encoding="utf-8")
    first = office_run.review.iloc[0]
    token = pair_ref((first.source_l, first.record_l), (first.source_r, first.record_r)).token
    assert f'href="http://10.1.2.3:8000/pair/{url_token(b"county-secret", token)}"' in html
    assert 'href="http://10.1.2.3:8000/queue"' in html


def test_a_second_run_reports_what_changed_since_the_first(small_world, tmp_path):
    from linkage.core.config import load_config
    from linkage.jobs.run import run

    config = load_config(small_world / "configs" / "demo.yaml", {
        "output": str(tmp_path / "out"), "store": f"sqlite:///{tmp_path / 'store.sqlite'}"})
    first = run(config)
    assert "changes" not in first.summary  # nothing to compare with
    second = run(config)
    changes = second.summary["changes"]
    assert changes["previous_run"] == first.run_id
    assert changes["entities_before"] == changes["entities_after"] == len(second.golden)
    assert (changes["created"], changes["retired"], changes["merged"], changes["split"],
            changes["roster_added"], changes["roster_removed"]) == (0, 0, 0, 0, 0, 0)
    html = (second.out_dir / "report.html").read_text(encoding="utf-8")
    assert "Changes since the previous run" in html and first.run_id in html
