"""Reviewers and a supervisor in real headless Chromium against `linkage serve` (a real uvicorn
process): sign in, decide pairs with the keyboard, find them in the log, sign out; the Chinese
interface and the language switch; a refused merge's explanation and its confirmation step;
Enter on a held pair; a household correspondence rejected with its key; and a 50-decision
session whose server time per decision is printed (the speed target itself is
benchmarks/review_session.py's business)."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa
from review_helpers import (
    PASSWORD,
    REPO,
    free_port,
    registry_refusal,
    save_artifact,
    world_with_another_id,
    write_config,
)

from linkage.store import decisions

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


@contextmanager
def serving(world, tmp_path, db, *extra):
    """`linkage serve` over ``world`` and the store ``db``; yields (base URL, log path)."""
    config = write_config(world, tmp_path, f"sqlite:///{db}")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "LINKAGE_SECRET_KEY": "browser-test", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "linkage.cli", "serve", str(config),
                                 "--port", str(port), *extra], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"linkage serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def served(web_run, template_db, tmp_path):
    """`linkage serve` on a copy of the test store; yields (base URL, store path, log path)."""
    db = tmp_path / "review.sqlite"
    shutil.copy(template_db, db)
    with serving(web_run.world, tmp_path, db) as (base, log):
        yield base, db, log


@pytest.fixture
def served_conflict(web_run, template_db, tmp_path):
    """As `served`, over a copy of the world in which the first refused merge of the queue
    joins two registry records with different ID numbers (a CONFLICT if merged)."""
    from linkage.store import Store
    from linkage.web.queue import ReviewQueue

    db = tmp_path / "review.sqlite"
    shutil.copy(template_db, db)
    store = Store(f"sqlite:///{db}")
    _pair, _first, second = registry_refusal(ReviewQueue(store.engine, web_run.config.job))
    store.engine.dispose()
    world = world_with_another_id(web_run.world, tmp_path / "world", second[1])
    with serving(world, tmp_path, db) as (base, log):
        yield base, db, log


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing; ./dev test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/queue")


def _stored(db) -> list[tuple[str, str]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(decisions.c.reviewer, decisions.c.decision)
                            .order_by(decisions.c.decision_id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _wait_for_focus(page, element_id: str) -> None:
    """Wait until the page's autofocus has landed on `element_id` (fails after 5 s).

    Chromium applies `autofocus` at its next rendering step, which can come after the load
    event that `wait_for_url` waits for; a key pressed in between goes to the body, as it
    would for a reviewer faster than the screen. So a test waits for the focus, as the eye does.
    """
    page.wait_for_function(
        "id => document.activeElement && document.activeElement.id === id",
        arg=element_id, timeout=5000)


def test_a_reviewer_decides_three_pairs_by_keyboard_and_the_supervisor_sees_them(
        served, browser, tmp_path):
    base, db, log = served
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    _sign_in(page, base, "alice")
    page.focus("#start")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/pair/*")
    assert page.locator("table.compare").is_visible()
    assert page.locator(".idnum span.m").count() > 0  # masked digits
    shot = tmp_path / "review_pair_page.png"
    page.screenshot(path=str(shot), full_page=True)
    save_artifact(shot)

    # Typing a note (with m and n in it) must not decide; Esc leaves the box.
    page.fill("input[name=note]", "")
    page.focus("input[name=note]")
    page.keyboard.type("name mismatch in NCMS")
    assert page.url.startswith(f"{base}/pair/")
    page.keyboard.press("Escape")
    seen = []
    for key in ("m", "n", "u"):
        seen.append(page.url.rsplit("/", 1)[1])
        _press_decision(page, key)
    assert len(set(seen)) == 3

    page.click("#logout")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/supervisor/log")
    page.wait_for_url(f"{base}/login")  # signed out means signed out

    _sign_in(page, base, "sam")
    page.click("#nav-log")
    page.select_option("#reviewer-filter", "alice")
    page.click("form.filter button")
    page.wait_for_url(f"{base}/supervisor/log?reviewer=alice")
    rows = page.locator("#log tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator(".dec").inner_text() for i in range(3)] == [
        "不确定", "不是同一人", "同一人"]
    assert "name mismatch in NCMS" in rows.nth(2).inner_text()
    page.click("#logout")
    page.wait_for_url(f"{base}/login")

    assert _stored(db) == [("alice", "match"), ("alice", "non_match"), ("alice", "unsure")]
    access = log.read_text()
    assert "GET /supervisor/log HTTP" in access and "reviewer=alice" not in access


def test_the_interface_is_chinese_and_english_is_one_click_away(served, browser, tmp_path):
    base, _db, _log = served
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.goto(f"{base}/login")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("button.primary").inner_text() == "登录"
    _sign_in(page, base, "alice")
    assert page.locator("h1").inner_text() == "审核队列"
    assert "开始审核" in page.locator("#start").inner_text()
    _wait_for_focus(page, "start")
    page.keyboard.press("Enter")  # the start button has the focus
    page.wait_for_url(f"{base}/pair/*")
    pair_url = page.url
    text = page.locator("main").inner_text()
    for words in ("模型为何这样评分", "的家庭成员", "的其他候选", "同一人", "不是同一人", "不确定"):
        assert words in text, words
    for words in ("Why the model scores it so", "Household of", "Other candidates", "Match"):
        assert words not in text, words
    # Sources and bands in words: the registry by its role, insurance by its scheme's name.
    sources = page.locator("table.compare thead .src").all_inner_texts()
    assert len(sources) == 2 and set(sources) <= {"户籍", "新农合", "城镇居民"}, sources
    assert page.locator(".pair-head .band").inner_text() in {"匹配档", "待审核档", "不匹配档"}
    shot = tmp_path / "review_pair_page_zh.png"
    page.screenshot(path=str(shot), full_page=True)
    save_artifact(shot)

    page.click("#language button[value=en]")
    page.wait_for_url(pair_url)  # back on the same pair, in English
    assert page.get_attribute("html", "lang") == "en"
    text = page.locator("main").inner_text()
    assert "Why the model scores it so" in text and "Same person" in text
    assert "模型为何这样评分" not in text
    sources = page.locator("table.compare thead .src").all_inner_texts()
    assert len(sources) == 2 and set(sources) <= {"registry", "NCMS", "URBAN"}, sources
    assert page.locator(".pair-head .band").inner_text() in {
        "match band", "review band", "non-match band"}
    page.goto(f"{base}/queue")
    assert page.locator("h1").inner_text() == "Review queue"  # the cookie keeps the choice
    page.click("#language button[value=zh]")
    page.wait_for_url(f"{base}/queue")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "审核队列"
    assert "lang=" not in page.url


def test_a_refused_merge_says_what_each_key_does_and_a_conflict_is_confirmed(
        served_conflict, browser, tmp_path):
    base, db, _log = served_conflict
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    _sign_in(page, base, "alice")
    _wait_for_focus(page, "start")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/pair/*")
    pair_url = page.url
    refusal = page.locator("#refusal").inner_text()
    assert "合并被拒" in refusal and "户籍记录 户籍:" in refusal and "police:" not in refusal
    assert "同一人：会产生冲突（CONFLICT），因为户籍记录" in refusal
    assert "不是同一人：保持分开" in refusal and "不确定：这对记录留在队列中" in refusal
    shot = tmp_path / "review_refused_merge.png"
    page.screenshot(path=str(shot), full_page=True)
    save_artifact(shot)

    # A held pair: the queue's Continue button has the focus, and Enter opens the pair again.
    page.goto(f"{base}/queue")
    _wait_for_focus(page, "continue")
    assert page.locator("#count-yours b").inner_text() == "1"
    page.keyboard.press("Enter")
    page.wait_for_url(pair_url)

    page.keyboard.press("m")  # 同一人: asks first, stores nothing
    page.wait_for_url(f"{pair_url}/decide")
    _wait_for_focus(page, "confirm-yes")
    effect = page.locator("#confirm-effect").inner_text()
    assert "身份证号不同" in effect and "户籍记录 户籍:" in effect
    assert _stored(db) == []
    page.keyboard.press("Escape")  # back to the pair, still nothing stored
    page.wait_for_url(pair_url)
    assert _stored(db) == []
    page.keyboard.press("m")
    page.wait_for_url(f"{pair_url}/decide")
    _wait_for_focus(page, "confirm-yes")
    page.keyboard.press("Enter")  # confirmed: stored, and the next pair opens
    page.wait_for_url(lambda url: url != pair_url and "/decide" not in url)
    assert _stored(db) == [("alice", "match")]


def _decision_times(page, key: str) -> tuple[float, float]:
    """Press a decision key; the server times (ms) of the decision's POST (store it, claim the
    next pair) and of the page that follows, from their Server-Timing headers."""
    seen: list = []

    def handler(response) -> None:
        seen.append(response)

    page.on("response", handler)
    try:
        _press_decision(page, key)
        page.wait_for_load_state("load")
    finally:
        page.remove_listener("response", handler)
    post = [r for r in seen if r.request.method == "POST" and r.url.endswith("/decide")]
    after = [r for r in seen if r.request.method == "GET" and r.request.resource_type == "document"]
    assert post and after, [(r.request.method, r.url) for r in seen]
    times = [float(SERVER_TIMING.search(r.headers["server-timing"]).group(1))
             for r in (post[-1], after[-1])]  # the stored decision (after a confirmation)
    return times[0], times[1]


def _press_decision(page, key: str) -> None:
    """Press a decision key and wait for the next page; a 同一人 that makes a CONFLICT asks
    first (the queue may hand out a refused merge), and Enter on the focused 确认 confirms."""
    current = page.url
    page.keyboard.press(key)
    page.wait_for_url(lambda url: url != current)
    if page.url.endswith("/decide"):
        _wait_for_focus(page, "confirm-yes")
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: not url.endswith("/decide"))


def test_a_fifty_decision_session_reports_the_server_time_per_decision(served, browser):
    """Fifty decisions by keyboard (the test run has about two dozen pairs: alice and bob skip
    every pair with 不确定, which leaves it for the others, then carol decides); the server
    time of each (decision + next page) is printed."""
    base, db, _log = served
    timings: list[tuple[float, float]] = []
    for reviewer, keys in (("alice", "u"), ("bob", "u"), ("carol", "nm")):
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        _sign_in(page, base, reviewer)
        if page.locator("#start[disabled]").count():
            context.close()
            continue
        _wait_for_focus(page, "start")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/pair/*")
        i = 0
        while len(timings) < 50 and "/pair/" in page.url:
            timings.append(_decision_times(page, keys[i % len(keys)]))
            i += 1
        context.close()
        if len(timings) >= 50:
            break
    assert len(timings) == 50
    stored = _stored(db)
    assert len(stored) == 50 and {r for r, _ in stored} == {"alice", "bob", "carol"}
    total = sorted(p + g for p, g in timings)
    print(f"\nreview session: 50 decisions; server ms per decision (POST + next page): "
          f"median {statistics.median(total):.1f}, p90 {total[44]:.1f}, max {total[-1]:.1f}; "
          f"POST median {statistics.median(p for p, _ in timings):.1f}, "
          f"page median {statistics.median(g for _, g in timings):.1f}")


def _household_decisions(db) -> list[tuple[str, str]]:
    from linkage.store import correspondence_decisions

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(correspondence_decisions.c.reviewer,
                                      correspondence_decisions.c.decision)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_reviewer_rejects_a_household_correspondence_with_the_n_key(served, browser,
                                                                      tmp_path):
    base, db, _log = served
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    _sign_in(page, base, "alice")
    page.click("#nav-households")
    page.wait_for_url(f"{base}/households")
    assert "需要查看" in page.locator("#corr-filter").inner_text()
    first = page.locator("#correspondences tbody tr").first
    household = first.locator("a.open-corr").inner_text()
    first.locator("a.open-corr").click()
    page.wait_for_url(f"{base}/households/*")
    assert household in page.locator(".pair-head").inner_text()
    assert "名成员中" in page.locator("#evidence").inner_text()
    assert page.locator("#members tbody tr").count() >= 2
    assert page.locator("#members .idnum span.m").count() > 0  # masked digits
    shot = tmp_path / "review_household_page.png"
    page.screenshot(path=str(shot), full_page=True)
    save_artifact(shot)
    # Typing n in the note box decides nothing; after Esc, n is 不是同一户.
    page.focus("input[name=note]")
    page.keyboard.type("not one family")
    assert page.url.startswith(f"{base}/households/")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    page.wait_for_url(f"{base}/households?show=look&notice=decided")
    assert page.locator("#notice").is_visible()
    decided = page.locator("#correspondences tbody tr").first
    assert decided.locator("a.open-corr").inner_text() == household
    assert decided.locator(".corr-decision").inner_text() == "不是同一户"
    assert _household_decisions(db) == [("alice", "different")]
