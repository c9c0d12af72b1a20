"""A reviewer and a supervisor in real headless Chromium against `linkage serve` (a real uvicorn
process): sign in, decide three pairs with the keyboard, find them in the log, sign out."""
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa
from review_helpers import PASSWORD, REPO, free_port, save_artifact, write_config

from linkage.store import decisions

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def served(web_run, template_db, tmp_path):
    """`linkage serve` on a copy of the test store; yields (base URL, store path, log path)."""
    db = tmp_path / "review.sqlite"
    shutil.copy(template_db, db)
    config = write_config(web_run.world, tmp_path, f"sqlite:///{db}")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "LINKAGE_SECRET_KEY": "browser-test", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "linkage.cli", "serve", str(config),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=REPO)
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
        yield base, db, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/queue")


def test_a_reviewer_decides_three_pairs_by_keyboard_and_the_supervisor_sees_them(served, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing; ./dev test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    base, db, log = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
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
                current = page.url
                seen.append(current.rsplit("/", 1)[1])
                page.keyboard.press(key)
                page.wait_for_url(lambda url, current=current: url != current)
            assert len(set(seen)) == 3

            page.click("#logout")
            page.wait_for_url(f"{base}/login")
            page.goto(f"{base}/supervisor/log")
            page.wait_for_url(f"{base}/login")  # signed out means signed out

            _sign_in(page, base, "sam")
            page.click("text=Decision log")
            page.select_option("#reviewer-filter", "alice")
            page.click("form.filter button")
            page.wait_for_url(f"{base}/supervisor/log?reviewer=alice")
            rows = page.locator("#log tbody tr")
            assert rows.count() == 3
            assert [rows.nth(i).locator(".dec").inner_text() for i in range(3)] == [
                "unsure", "non_match", "match"]
            assert "name mismatch in NCMS" in rows.nth(2).inner_text()
            page.click("#logout")
            page.wait_for_url(f"{base}/login")
        finally:
            browser.close()

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(decisions.c.reviewer, decisions.c.decision)
                              .order_by(decisions.c.decision_id)).all()
    engine.dispose()
    assert stored == [("alice", "match"), ("alice", "non_match"), ("alice", "unsure")]
    access = log.read_text()
    assert "GET /supervisor/log HTTP" in access and "reviewer=alice" not in access
