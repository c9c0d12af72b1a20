"""Household correspondences in the review app: the run's list (those that need a look first,
with counts and pages), one correspondence's page (both households side by side, masked IDs,
the step's evidence in Chinese), decisions 同一户 / 不是同一户 / 不确定 (role-checked, CSRF,
audited) and the next full run applying them."""
import re
import shutil

import pandas as pd
import sqlalchemy as sa
from review_helpers import SECRET, write_config

from linkage.store import Store, audit_log, correspondence_decisions
from linkage.store import correspondences as store_corr
from linkage.web.householdview import url_token

HISTORY = "<h2>决定记录</h2>"
ID_NUMBER = re.compile(r"(?<![0-9*])[0-9]{17}[0-9Xx](?![0-9])")


def _look(web_run) -> list:
    """The session run's correspondences that need a look, in the list's order."""
    store = Store(f"sqlite:///{web_run.db}")
    try:
        return store_corr.listing(store.engine, web_run.run_id, "look", 1000)
    finally:
        store.engine.dispose()


def _url(row) -> str:
    return "/households/" + url_token(SECRET.encode("utf-8"), row.insurance_household,
                                      row.registry_household)


def test_the_list_shows_splits_merges_and_dropped_first_with_counts(client_for, web_run):
    look = _look(web_run)
    assert look and {r.kind for r in look} <= {"split", "merged", "split+merged", "dropped"}
    alice = client_for("alice")
    page = alice.get("/households")
    assert page.status_code == 200
    html = page.text
    assert "户对应关系" in html and "需要查看" in html  # Chinese by default
    assert _url(look[0]) in html
    # one to one correspondences wait under their own filter
    listed = re.findall(r'href="(/households/[0-9a-f]{32})', html)
    assert len(listed) == min(len(look), 50)
    agreed = alice.get("/households?show=agreed").text
    assert "一对一" in agreed and _url(look[0]) not in agreed
    assert alice.get("/households?show=nonsense").status_code == 422
    if len(look) > 50:
        assert 'page=2' in html
        assert len(re.findall(r'href="/households/', alice.get("/households?page=2").text)) \
            == min(len(look) - 50, 50)


def test_a_correspondence_page_shows_both_households_masked_and_audited(client_for, web_run,
                                                                        app):
    row = next(r for r in _look(web_run) if r.kind == "split")
    alice = client_for("alice")
    page = alice.get(_url(row))
    assert page.status_code == 200
    html = page.text
    assert "名成员中" in html and "名一致" in html  # "k of n members agree", in Chinese
    assert "同一户" in html and "不是同一户" in html and "不确定" in html
    assert not ID_NUMBER.search(html)  # IDs masked as on the pair page
    book = web_run.records
    source, household = row.insurance_household.split(":", 1)
    for member in book.household_members(source, household):
        assert member.record_id in html and member.name in html
    assert HISTORY not in html  # reviewers do not see earlier decisions (a blind review)
    with app.state.review.engine.connect() as conn:
        seen = conn.execute(sa.select(audit_log.c.actor, audit_log.c.detail).where(
            audit_log.c.action == "view_correspondence")).all()
    assert [a for a, _ in seen] == ["alice"] and row.registry_household in seen[0][1]
    assert alice.get("/households/" + "0" * 32).status_code == 404


def test_deciding_a_correspondence_is_stored_audited_and_listed(client_for, app, web_run):
    row = _look(web_run)[0]
    alice = client_for("alice")
    url = _url(row) + "/decide"
    assert alice.post(url, data={"decision": "different"}).status_code == 403  # no CSRF token
    assert alice.post(url, data={"decision": "match", "csrf_token": alice.csrf}
                      ).status_code == 422
    answer = alice.post(url, data={"decision": "different", "note": "两户人",
                                   "csrf_token": alice.csrf})
    assert (answer.status_code, answer.headers["location"]) == (
        303, "/households?show=look&notice=decided")
    listed = alice.get(answer.headers["location"]).text
    assert "已保存" in listed and "不是同一户" in listed
    engine = app.state.review.engine
    with engine.connect() as conn:
        stored = conn.execute(sa.select(correspondence_decisions)).mappings().all()
        audited = conn.execute(sa.select(audit_log.c.actor, audit_log.c.decision_id).where(
            audit_log.c.action == "decide_correspondence")).all()
    assert [(d["insurance_household"], d["registry_household"], d["decision"], d["reviewer"],
             d["note"], d["run_id"]) for d in stored] == [
        (row.insurance_household, row.registry_household, "different", "alice", "两户人",
         web_run.run_id)]
    assert audited == [("alice", stored[0]["decision_id"])]
    # A supervisor sees the decision history on the page; the standing decision is shown.
    sam = client_for("sam")
    page = sam.get(_url(row)).text
    assert HISTORY in page and "alice" in page and "现行决定" in page
    trail = sam.get("/supervisor/audit").text  # the audit trail names the act in words
    assert "判定了户对应关系" in trail and "新农合家庭" in trail


def test_the_next_full_run_applies_a_rejection(web_run, tmp_path):
    """不是同一户 on a split correspondence: the next run stores it as rejected and assigns no
    member inside it; the other correspondences stay as they were."""
    db = tmp_path / "store.sqlite"
    shutil.copy(web_run.db, db)
    row = next(r for r in _look(web_run) if r.kind == "split")
    store = Store(f"sqlite:///{db}")
    store_corr.decide(store.engine, row.insurance_household, row.registry_household, "alice",
                      "different", web_run.run_id)
    before = store.correspondences(web_run.run_id)
    store.engine.dispose()

    from linkage.core.config import load_config
    from linkage.jobs.run import run

    config = load_config(write_config(web_run.world, tmp_path, f"sqlite:///{db}"))
    result = run(config)
    store = Store(f"sqlite:///{db}")
    after = store.correspondences(result.run_id)
    store.engine.dispose()
    key = ["insurance_household", "registry_household"]
    decided = after.set_index(key).loc[(row.insurance_household, row.registry_household)]
    assert (decided["kind"], decided["kept"], decided["decision"], decided["assignment"]) == (
        "rejected", False, "different", "[]")
    # Correspondences of other households are as they were.
    others = before[(before["insurance_household"] != row.insurance_household)
                    & (before["registry_household"] != row.registry_household)]
    same = others.merge(after, on=key, suffixes=("", "_after"))
    assert len(same) == len(others)
    assert (same["kind"] == same["kind_after"]).all()
    csv = pd.read_csv(result.out_dir / "household_correspondences.csv", dtype=str)
    assert list(csv.columns) == ["insurance_household", "registry_household", "anchors",
                                 "members_insurance", "members_registry", "members_agreeing",
                                 "kind"]
    assert "rejected" in set(csv["kind"])


def test_members_are_paired_as_assigned_and_left_over_members_stand_alone():
    """The page's rows from a correspondence's assignment: the sure pairs first, then each
    side's members left over; IDs masked, differences marked only between partners."""
    from linkage.web.householdview import members
    from linkage.web.records import RecordBook

    frame = pd.DataFrame({
        "source": ["ncms", "ncms", "ncms", "police", "police"],
        "record_id": ["N1", "N2", "N3", "P1", "P2"],
        "household_id": ["1505230901"] * 3 + ["100001"] * 2,
        "name": ["王建国", "李秀英", "狗剩", "王建国", "李秀英"],
        "relation": ["户主", "妻", "子", "户主", "妻"],
        "id_norm": ["150523196003151234", "150523196208201226", "150523201905051213",
                    "150523196003151234", "150523196208201227"],
        "birth_std": [19600315, 19620820, 20190000, 19600315, 19620820],
        "gender_std": ["M", "F", "M", "M", "F"],
    })
    columns = {s: {"name": "姓名", "relation": "与户主关系", "household_id": "户号"}
               for s in ("ncms", "police")}
    book = RecordBook(frame, columns)
    rows = members(book, ("ncms", "1505230901"), ("police", "100001"),
                   [["N2", "P2", 12.5, False], ["N1", "P1", 39.09, True]])
    assert [(r.insurance and r.insurance.record_id, r.registry and r.registry.record_id,
             r.weight, r.strong) for r in rows] == [
        ("N1", "P1", 39.09, True), ("N2", "P2", 12.5, False), ("N3", None, None, False)]
    assert rows[0].insurance.relation == "户主" and rows[2].insurance.birth == "2019"
    wife = rows[1]
    assert "".join(c.char for c in wife.insurance.id_cells) == "15" + "*" * 16
    assert [k for k, c in enumerate(wife.registry.id_cells) if c.differs] == [17]
    assert not any(c.differs for c in rows[0].insurance.id_cells)
    left_over = rows[2].insurance.id_cells  # alone: masked, nothing marked as differing
    assert len(left_over) == 18 and not any(c.differs for c in left_over)
