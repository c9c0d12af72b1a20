"""What a run changed against the previous one: merges, splits, new and retired ids, roster rows;
and why clustering refused a merge, naming the records that collide."""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.core.changes import between, compare_runs, entity_successors
from linkage.core.cluster import cluster, refusal_reasons


def _members(rows):
    return pd.DataFrame(rows, columns=["source", "record_id", "entity_id"])


def test_a_merge_a_split_a_new_person_and_the_roster_rows():
    before = _members([
        ("police", "P1", "E_zhang"), ("ncms", "N1", "E_zhang"),   # 张伟 and his NCMS record
        ("police", "P2", "E_wang"), ("urban", "U2", "E_wang2"),   # 王芳 listed as two people
        ("police", "P3", "E_li"), ("ncms", "N3", "E_li"),         # 李娜 and 李娜's namesake
        ("ncms", "N9", "E_gone"),                                  # withdrawn since
    ])
    after = _members([
        ("police", "P1", "E_zhang"), ("ncms", "N1", "E_zhang"),
        ("police", "P2", "E_wang"), ("urban", "U2", "E_wang"),    # merged: E_wang2 retired
        ("police", "P3", "E_li"), ("ncms", "N3", "E_li_b"),       # split
        ("urban", "U7", "E_new"),                                   # a new enrolment
    ])
    got = compare_runs("R1", before, after,
                       verified_before=np.array(["E_zhang", "E_wang", "E_li"], dtype=object),
                       verified_after=np.array(["E_zhang", "E_wang", "E_li", "E_new"],
                                               dtype=object))
    assert (got.entities_before, got.entities_after) == (5, 5)
    assert got.merged == 1 and got.merges == [{"into": "E_wang", "from": ["E_wang", "E_wang2"]}]
    assert got.split == 1 and got.splits == [{"from": "E_li", "into": ["E_li", "E_li_b"]}]
    assert got.created == 2  # E_li_b, E_new
    assert got.retired == 2  # E_wang2, E_gone
    assert got.moved_records == 2  # U2, N3
    assert (got.new_records, got.removed_records) == (1, 1)
    assert (got.roster_added, got.roster_removed) == (1, 0)


def test_every_id_whose_records_moved_points_to_where_they_went():
    """A card issued to E_wang2 or E_li is traced to the person's id now."""
    before = _members([
        ("police", "P2", "E_wang"), ("urban", "U2", "E_wang2"),   # 王芳 listed as two people
        ("police", "P3", "E_li"), ("ncms", "N3", "E_li"),         # 李娜 and her namesake
        ("police", "P4", "E_zhao"), ("ncms", "N4", "E_zhao"),     # 赵敏, split in two
        ("ncms", "N9", "E_gone"),                                  # withdrawn since
        ("police", "P1", "E_zhang"),                               # unchanged: not listed
    ])
    after = _members([
        ("police", "P2", "E_wang"), ("urban", "U2", "E_wang"),
        ("police", "P3", "E_li"), ("ncms", "N3", "E_li_b"),
        ("police", "P4", "E_zhao_a"), ("ncms", "N4", "E_zhao_b"),
        ("police", "P1", "E_zhang"), ("urban", "U7", "E_new"),
    ])
    got = entity_successors("R1", before, after)
    assert got.to_dict("records") == [
        {"entity_id": "E_gone", "change": "withdrawn", "successor_ids": "", "records": 1,
         "records_moved": 1, "previous_run": "R1",
         "remarks": "此编号的记录已不在任何名单中，编号停用"},
        {"entity_id": "E_li", "change": "split_off", "successor_ids": "E_li_b", "records": 2,
         "records_moved": 1, "previous_run": "R1",
         "remarks": "部分记录已拆出至 E_li_b（不是同一人），本编号保留"},
        {"entity_id": "E_wang2", "change": "merged_into", "successor_ids": "E_wang",
         "records": 1, "records_moved": 1, "previous_run": "R1",
         "remarks": "此编号已并入 E_wang（同一人），请按新编号查询、制卡"},
        {"entity_id": "E_zhao", "change": "split_into", "successor_ids": "E_zhao_a;E_zhao_b",
         "records": 2, "records_moved": 2, "previous_run": "R1",
         "remarks": "此编号已拆分为 E_zhao_a、E_zhao_b（原为不同的人），已制卡的请核实持卡人"},
    ]
    assert entity_successors("R1", after, after).empty


def test_the_same_membership_changes_nothing():
    m = _members([("police", "P1", "E1"), ("ncms", "N1", "E1"), ("police", "P2", "E2")])
    got = compare_runs("R1", m, m.sample(frac=1, random_state=3), np.array(["E1"]),
                       np.array(["E1"]))
    assert (got.created, got.retired, got.merged, got.split, got.moved_records,
            got.roster_added, got.roster_removed) == (0, 0, 0, 0, 0, 0, 0)


def test_a_refused_merge_names_the_two_registry_records():
    # police P1 (张建国 1958) and P2 (张建国 1958, another man); one NCMS record matches both.
    keys = np.array(["police:P1", "police:P2", "ncms:N1"], dtype=object)
    authority = np.array([True, True, False])
    left, right, weight = np.array([0, 1]), np.array([2, 2]), np.array([12.0, 9.0])
    result = cluster(3, left, right, weight, authority)
    assert result.refused.tolist() == [1]
    reasons = refusal_reasons(result.labels, left[result.refused], right[result.refused],
                              authority, keys)
    assert "police:P1" in reasons[0] and "police:P2" in reasons[0]
    assert "CONFLICT" in reasons[0]


def test_a_refused_merge_names_the_cannot_link_that_spans_it():
    # Two NCMS records of one household (father 王建军, son 王建军 carrying his father's ID)
    # and an urban record matching both: the household rule keeps father and son apart.
    keys = np.array(["ncms:N1", "ncms:N2", "urban:U1"], dtype=object)
    authority = np.zeros(3, dtype=bool)
    left, right, weight = np.array([0, 1]), np.array([2, 2]), np.array([11.0, 8.0])
    cannot = (np.array([0]), np.array([1]))
    result = cluster(3, left, right, weight, authority, cannot_link=cannot)
    reasons = refusal_reasons(result.labels, left[result.refused], right[result.refused],
                              authority, keys, cannot, np.array(["the household rule"]))
    assert reasons.tolist() == ["would join ncms:N1 and ncms:N2, kept apart by the household "
                                "rule"]


def test_a_reason_fits_the_store_column():
    keys = np.array(["police:" + "9" * 150, "police:" + "8" * 150, "ncms:N1"], dtype=object)
    authority = np.array([True, True, False])
    reasons = refusal_reasons(np.array([0, 1, 1]), np.array([0]), np.array([2]), authority, keys)
    assert len(reasons[0]) == 200 and reasons[0].endswith("…")


def _reference(before: pd.DataFrame, after: pd.DataFrame) -> dict:
    """The changes spelt out record by record, to hold the vectorised code to."""
    was = {(s, r): e for s, r, e in before.itertuples(index=False)}
    now = {(s, r): e for s, r, e in after.itertuples(index=False)}
    both = [k for k in was if k in now]
    into, out_of = {}, {}
    for k in both:
        into.setdefault(now[k], set()).add(was[k])
        out_of.setdefault(was[k], set()).add(now[k])
    merged = sorted(e for e, s in into.items() if len(s) > 1)
    split = sorted(e for e, s in out_of.items() if len(s) > 1)
    touched = sorted({was[k] for k in was if now.get(k) != was[k]})
    ids_after = set(now.values())
    successors = []
    for e in touched:
        mine = [k for k in was if was[k] == e]
        went = sorted({now[k] for k in mine if k in now and now[k] != e})
        change = ("split_off" if e in ids_after else "withdrawn" if not went
                  else "merged_into" if len(went) == 1 else "split_into")
        successors.append((e, change, ";".join(went), len(mine),
                           sum(now.get(k) != e for k in mine)))
    return {"created": len(ids_after - set(was.values())),
            "retired": len(set(was.values()) - ids_after),
            "merged": len(merged), "split": len(split),
            "merges": [{"into": e, "from": sorted(into[e])} for e in merged[:10]],
            "splits": [{"from": e, "into": sorted(out_of[e])} for e in split[:10]],
            "moved_records": sum(was[k] != now[k] for k in both),
            "new_records": len(set(now) - set(was)), "removed_records": len(set(was) - set(now)),
            "successors": successors}


@given(st.lists(st.tuples(st.sampled_from(["police", "ncms"]), st.integers(0, 30),
                          st.integers(0, 8), st.integers(0, 8), st.booleans(), st.booleans()),
                max_size=60))
@settings(max_examples=150, deadline=None)
def test_changes_agree_with_the_record_by_record_account(rows):
    """Any two memberships (records kept, moved, new, gone): the same counts, examples and
    successor rows as following each record by hand."""
    seen, b, a = set(), [], []
    for source, rec, e_before, e_after, in_before, in_after in rows:
        key = (source, f"{source[0].upper()}{rec}")
        if key in seen:
            continue
        seen.add(key)
        if in_before:
            b.append((*key, f"E{e_before}"))
        if in_after:
            a.append((*key, f"E{e_after}"))
    before, after = _members(b), _members(a)
    want = _reference(before, after)
    got = compare_runs("R1", before, after, np.array([], dtype=object),
                       np.array([], dtype=object)).to_dict()
    assert {k: got[k] for k in want if k != "successors"} == {
        k: v for k, v in want.items() if k != "successors"}
    rows_got = entity_successors("R1", before, after)
    together, rows_together = between("R1", before, after, np.array([], dtype=object),
                                      np.array([], dtype=object))
    assert together.to_dict() == got
    pd.testing.assert_frame_equal(rows_together, rows_got)
    assert [tuple(r) for r in rows_got[["entity_id", "change", "successor_ids", "records",
                                        "records_moved"]].itertuples(index=False)] == [
        tuple(s) for s in want["successors"]]
