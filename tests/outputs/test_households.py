"""Household links: each NCMS household beside its registry household(s), the re-collection
worklist (household_links.csv / .xlsx) and the report's household section."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from linkage.outputs.households import (
    COLUMNS,
    household_links,
    report_context,
    village_summary,
    write_household_links,
)

ROLES = {"police": "authority", "ncms": "insurance", "urban": "insurance"}
DALIN, SUNJIA, SHUANGSHENG = "大林镇", "孙家窝堡村", "双胜村"

# (source, record_id, household_id, relation, name, village, person). One person = one entity.
RECORDS = [
    # The registry (公安户籍), by 户号.
    ("police", "GA01", "100001", "户主", "王建国", SUNJIA, "wang_jianguo"),
    ("police", "GA02", "100001", "妻", "李秀英", SUNJIA, "li_xiuying"),
    ("police", "GA03", "100001", "子", "王小明", SUNJIA, "wang_xiaoming"),
    ("police", "GA04", "100002", "户主", "刘强", SUNJIA, "liu_qiang"),
    ("police", "GA05", "100002", "妻", "王小红", SUNJIA, "wang_xiaohong"),  # married out
    ("police", "GA06", "100002", "女", "刘佳", SUNJIA, "liu_jia"),
    ("police", "GA07", "100003", "户主", "张福", SUNJIA, "zhang_fu"),
    ("police", "GA08", "100003", "妻", "赵桂兰", SUNJIA, "zhao_guilan"),
    ("police", "GA09", "100003", "子", "张伟", SUNJIA, "zhang_wei"),
    ("police", "GA10", "100003", "儿媳", "陈静", SUNJIA, "chen_jing"),
    ("police", "GA11", "100003", "孙子", "张浩", SUNJIA, "zhang_hao"),
    ("police", "GA12", "100004", "户主", "李军", SHUANGSHENG, "li_jun"),
    ("police", "GA13", "100005", "户主", "李勇", SHUANGSHENG, "li_yong"),  # his own 户
    ("police", "GA14", "100005", "妻", "周敏", SHUANGSHENG, "zhou_min"),
    ("police", "GA15", "100006", "户主", "赵刚", SHUANGSHENG, "zhao_gang"),
    ("police", "GA16", "100006", "妻", "孙丽", SHUANGSHENG, "sun_li"),
    ("police", "GA17", "100006", "女", "赵一诺", SHUANGSHENG, "zhao_yinuo"),
    ("police", "GA18", "100007", "户主", "吴海", SHUANGSHENG, "wu_hai"),
    ("police", "GA19", "100007", "妻", "郑丽", SHUANGSHENG, "zheng_li"),
    # NCMS (新农合), by 家庭编号, as the village clerks keyed it.
    # split: the married daughter 王小红 is still listed with her parents
    ("ncms", "NH01", "NC0001", "户主", "王建国", SUNJIA + "3组", "wang_jianguo"),
    ("ncms", "NH02", "NC0001", "妻", "李秀英", SUNJIA + "3组", "li_xiuying"),
    ("ncms", "NH03", "NC0001", "子", "王小明", "孙家窝堡3组", "wang_xiaoming"),
    ("ncms", "NH04", "NC0001", "女", "王小红", SUNJIA + "3组", "wang_xiaohong"),
    # 1:1: and also listed in her husband's household (a duplicate enrolment)
    ("ncms", "NH05", "NC0002", "户主", "刘强", SUNJIA, "liu_qiang"),
    ("ncms", "NH06", "NC0002", "妻", "王小红", SUNJIA, "wang_xiaohong"),
    ("ncms", "NH07", "NC0002", "女", "刘佳", SUNJIA, "liu_jia"),
    # merged: the grandparents and the son's family, one registry household
    ("ncms", "NH08", "NC0003", "户主", "张福", SUNJIA, "zhang_fu"),
    ("ncms", "NH09", "NC0003", "配偶", "赵桂兰", SUNJIA, "zhao_guilan"),
    ("ncms", "NH10", "NC0004", "本人", "张伟", SUNJIA, "zhang_wei"),
    ("ncms", "NH11", "NC0004", "妻", "陈静", SUNJIA, "chen_jing"),
    ("ncms", "NH12", "NC0004", "子", "张浩", SUNJIA, "zhang_hao"),
    # split by a move: the son set up his own 户 with his wife, NCMS still lists him here
    ("ncms", "NH13", "NC0005", "户主", "李军", SHUANGSHENG, "li_jun"),
    ("ncms", "NH14", "NC0005", "长子", "李勇", SHUANGSHENG, "li_yong"),
    # unmatched: nobody the registry knows
    ("ncms", "NH15", "NC0006", "户主", "孙二", SHUANGSHENG, "sun_er"),
    ("ncms", "NH16", "NC0006", "女", "孙大丫", SHUANGSHENG, "sun_daya"),
    # 1:1 with a milk name the linkage could not tie to the formal name
    ("ncms", "NH17", "NC0007", "户主", "赵刚", SHUANGSHENG, "zhao_gang"),
    ("ncms", "NH18", "NC0007", "妻", "孙丽", SHUANGSHENG, "sun_li"),
    ("ncms", "NH19", "NC0007", "女", "狗剩", SHUANGSHENG, "zhao_milk"),
    # 1:1, and the wife's mother lists her too: her 户 is this household's, not the mother's
    ("ncms", "NH20", "NC0008", "户主", "吴海", SHUANGSHENG, "wu_hai"),
    ("ncms", "NH21", "NC0008", "妻", "郑丽", SHUANGSHENG, "zheng_li"),
    ("ncms", "NH22", "NC0009", "户主", "钱桂芝", SHUANGSHENG, "qian_guizhi"),
    ("ncms", "NH23", "NC0009", "女", "郑丽", SHUANGSHENG, "zheng_li"),
    # the urban roster has no households: a pupil enrolled by his school stays out
    ("urban", "CZ01", None, None, "王小明", "孙家窝堡小学", "wang_xiaoming"),
]


def world(records=RECORDS):
    frame = pd.DataFrame(records, columns=["source", "record_id", "household_id", "relation",
                                           "name", "village", "person"])
    frame["township"] = np.where(frame["village"] == SHUANGSHENG, "钱家店镇", DALIN)
    clusters = frame[["source", "record_id"]].assign(entity_id="E-" + frame["person"])
    return frame.drop(columns="person"), clusters


@pytest.fixture(scope="module")
def links():
    records, clusters = world()
    return household_links(records, clusters, ROLES).set_index("household_id", drop=False)


def test_one_row_per_ncms_household_sorted_by_place(links):
    assert list(links.columns) == COLUMNS
    assert sorted(links["household_id"]) == [f"NC{i:04d}" for i in range(1, 10)]
    assert list(links["township"]) == [DALIN] * 4 + ["钱家店镇"] * 5
    assert list(links["household_id"]) == sorted(links["household_id"])  # one village each
    assert (links["source"] == "ncms").all()
    assert (links["members"] == links["matched"] + links["only_ncms"] + links["moved"]).all()


def test_link_types(links):
    assert links["link_type"].to_dict() == {
        "NC0001": "split", "NC0002": "1:1", "NC0003": "merged", "NC0004": "merged",
        "NC0005": "split", "NC0006": "unmatched", "NC0007": "1:1", "NC0008": "1:1",
        "NC0009": "unmatched"}


def test_split_married_daughter_is_moved_to_her_husbands_household(links):
    parents = links.loc["NC0001"]
    assert parents["registry_household_id"] == "100001"
    assert parents["other_registry_household_ids"] == "100002"
    assert (parents["members"], parents["registry_members"]) == (4, 3)
    assert (parents["matched"], parents["only_ncms"], parents["only_registry"],
            parents["moved"]) == (3, 0, 0, 1)
    assert parents["matched_names"] == "王建国、李秀英、王小明"  # in the roster's order
    assert parents["moved_names"] == "王小红(100002)"
    assert parents["head"] == "王建国"
    husband = links.loc["NC0002"]
    assert husband["registry_household_id"] == "100002"
    assert pd.isna(husband["other_registry_household_ids"])
    assert husband["matched_names"] == "刘强、王小红、刘佳"
    assert (husband["matched"], husband["moved"], husband["only_registry"]) == (3, 0, 0)


def test_merged_households_share_one_registry_household(links):
    old, young = links.loc["NC0003"], links.loc["NC0004"]
    assert old["registry_household_id"] == young["registry_household_id"] == "100003"
    assert old["matched_names"] == "张福、赵桂兰"
    assert old["only_registry_names"] == "张伟、陈静、张浩"
    assert young["only_registry_names"] == "张福、赵桂兰"
    assert (young["matched"], young["only_registry"], young["registry_members"]) == (3, 2, 5)
    assert young["head"] == "张伟"  # 本人 is the head too


def test_a_son_registered_in_his_own_household_is_moved(links):
    row = links.loc["NC0005"]
    assert row["registry_household_id"] == "100004"
    assert row["moved_names"] == "李勇(100005)"
    assert (row["matched"], row["moved"], row["only_registry"]) == (1, 1, 0)


def test_unmatched_household_lists_everyone_as_only_in_ncms(links):
    row = links.loc["NC0006"]
    assert pd.isna(row["registry_household_id"]) and pd.isna(row["other_registry_household_ids"])
    assert (row["members"], row["only_ncms"], row["matched"]) == (2, 2, 0)
    assert row["registry_members"] == 0
    assert row["only_ncms_names"] == "孙二、孙大丫"


def test_members_only_on_one_side_of_a_1to1_household(links):
    row = links.loc["NC0007"]
    assert row["registry_household_id"] == "100006"
    assert row["only_ncms_names"] == "狗剩"
    assert row["only_registry_names"] == "赵一诺"
    assert (row["matched"], row["only_ncms"], row["only_registry"]) == (2, 1, 1)


def test_a_registry_household_holding_only_a_person_listed_elsewhere_is_not_merged(links):
    """The mother's NCMS household lists her married daughter; the daughter's 户 belongs to her
    husband's NCMS household, which stays 1:1, and the mother's household has no 户 of its own."""
    assert links.loc["NC0008", "link_type"] == "1:1"
    mother = links.loc["NC0009"]
    assert pd.isna(mother["registry_household_id"])
    assert mother["other_registry_household_ids"] == "100007"
    assert mother["moved_names"] == "郑丽(100007)"
    assert mother["only_ncms_names"] == "钱桂芝"
    assert (mother["only_registry"], mother["matched"]) == (0, 0)


def test_village_is_spelled_one_way_without_the_group(links):
    row = links.loc["NC0001"]
    assert row["village"] == SUNJIA  # 孙家窝堡村3组 and 孙家窝堡3组, one village
    assert links.loc["NC0002", "village"] == SUNJIA
    assert pd.isna(row["group"])  # the group comes from the standardised village_group


def test_group_is_the_one_most_members_were_entered_under():
    records, clusters = world()
    records["village_group"] = np.where(records["village"].str.endswith("3组"), "3", None)
    records.loc[records["record_id"] == "NH02", "village_group"] = "4"
    out = household_links(records, clusters, ROLES).set_index("household_id")
    assert out.loc["NC0001", "group"] == "3"
    assert pd.isna(out.loc["NC0002", "group"])


def test_clusters_in_another_order_give_the_same_rows(links):
    records, clusters = world()
    shuffled = clusters.sample(frac=1, random_state=3).reset_index(drop=True)
    again = household_links(records, shuffled, ROLES).set_index("household_id", drop=False)
    pd.testing.assert_frame_equal(again, links)


def test_a_record_in_no_entity_counts_as_only_in_ncms():
    records, clusters = world()
    clusters = clusters[clusters["record_id"] != "NH17"]  # 赵刚's NCMS record left unlinked
    row = household_links(records, clusters, ROLES).set_index("household_id").loc["NC0007"]
    assert row["only_ncms_names"] == "赵刚、狗剩"
    assert row["registry_household_id"] == "100006"
    assert row["only_registry_names"] == "赵刚、赵一诺"


def test_no_ncms_households_gives_an_empty_table():
    records, clusters = world([r for r in RECORDS if r[0] != "ncms"])
    out = household_links(records, clusters, ROLES)
    assert out.empty and list(out.columns) == COLUMNS


def test_several_registries_name_whose_household_number_it_is():
    rows = RECORDS + [("police2", "GB01", "100006", "户主", "赵刚", SHUANGSHENG, "zhao_gang")]
    records, clusters = world(rows)
    out = household_links(records, clusters, {**ROLES, "police2": "authority"})
    row = out.set_index("household_id").loc["NC0007"]
    assert row["registry_household_id"] == "police:100006"
    assert row["other_registry_household_ids"] == "police2:100006"


def test_vectorised_links_agree_with_a_household_by_household_reading():
    """Random worlds against a plain reading of the rules, one household at a time."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        records, clusters = _random_world(rng)
        out = household_links(records, clusters, ROLES).set_index("household_id")
        expected = _reference(records, clusters)
        assert set(out.index) == set(expected)
        for hid, want in expected.items():
            got = out.loc[hid]
            assert got["registry_household_id"] == want["main"] or (
                pd.isna(got["registry_household_id"]) and want["main"] is None), hid
            for column in ("matched", "only_ncms", "moved", "only_registry"):
                assert got[column] == want[column], (hid, column)


def test_files_keep_ids_as_text_and_neutralise_formulas(tmp_path):
    rows = [r if r[1] != "NH19" else r[:4] + ("=HYPERLINK(1)",) + r[5:] for r in RECORDS]
    rows = [(s, i, "0" + h if h else h, *rest) for s, i, h, *rest in rows]  # leading zeros
    records, clusters = world(rows)
    links = household_links(records, clusters, ROLES)
    csv_path, xlsx_path = write_household_links(links, tmp_path)
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(csv_path, dtype=str)
    assert list(back.columns) == COLUMNS
    assert back["household_id"].tolist() == links["household_id"].tolist()
    assert back["household_id"].str.startswith("0NC").all()
    assert "0100001" in set(back["registry_household_id"])
    assert "'=HYPERLINK(1)" in set(back["only_ncms_names"])
    ws = load_workbook(xlsx_path).worksheets[0]
    headers = [c.value for c in ws[1]]
    assert headers[:7] == ["来源 source", "乡镇 township", "村 village", "组 group",
                           "新农合家庭编号 household_id", "户主 head", "对应类型 link_type"]
    assert "户籍户号 registry_household_id" in headers and "已匹配人数 matched" in headers
    cells = {h: ws.cell(row=2, column=j + 1) for j, h in enumerate(headers)}
    assert cells["新农合家庭编号 household_id"].data_type == "s"
    assert cells["新农合家庭编号 household_id"].value == links["household_id"].iloc[0]
    assert cells["户籍户号 registry_household_id"].value.startswith("0")
    assert cells["已匹配人数 matched"].data_type == "n"
    formula = [ws.cell(row=i, column=headers.index("仅新农合成员 only_ncms_names") + 1).value
               for i in range(2, ws.max_row + 1)]
    assert "=HYPERLINK(1)" in formula  # the XLSX keeps the value, as a text cell


def test_village_summary_and_report_section(links):
    villages = village_summary(links.reset_index(drop=True))
    assert villages["households"].sum() == len(links)
    first = villages.iloc[0]  # the village with most households not 1:1
    assert (first["township"], first["village"]) == ("钱家店镇", SHUANGSHENG)
    assert (first["1:1"], first["split"], first["unmatched"], first["not_1to1"]) == (2, 1, 2, 3)
    section = report_context(links.reset_index(drop=True))
    assert section["households"] == 9
    assert section["types"] == {"1:1": 3, "split": 2, "merged": 2, "unmatched": 2}
    assert section["persons"]["moved"] == 3
    assert section["svg"].startswith("<svg")
    assert report_context(links.iloc[:0]) is None


def test_report_section_escapes_values_from_the_data(office_run, tmp_path):
    from linkage.outputs.quality import record_errors, village_report
    from linkage.outputs.report import render_report
    from linkage.outputs.view import RunView

    view = RunView.from_result(office_run)
    errors = record_errors(view)
    links = pd.read_csv(office_run.out_dir / "household_links.csv", dtype=str)
    for column in ("members", "matched", "only_ncms", "only_registry", "moved"):
        links[column] = links[column].astype(int)
    links["village"] = "<script>alert(1)</script>$x^{$"
    links.loc[links.index[:3], "link_type"] = "split"
    path = render_report(view, tmp_path / "report.html", {}, village_report(errors), None, errors,
                         households=links)
    html = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'id="households"' in html and 'href="#households"' in html
    plain = render_report(view, tmp_path / "plain.html", {}, village_report(errors), None, errors)
    assert 'id="households"' not in plain.read_text(encoding="utf-8")


@pytest.mark.slow
def test_demo_run_writes_every_ncms_household_once(office_run):
    out = office_run.out_dir
    assert (out / "household_links.csv").exists() and (out / "household_links.xlsx").exists()
    links = pd.read_csv(out / "household_links.csv", dtype=str)
    records = office_run.records
    ncms = records.loc[records["source"] == "ncms", "household_id"].astype(str).str.strip()
    assert not links["household_id"].duplicated().any()
    assert set(links["household_id"]) == set(ncms)
    counts = links[["members", "matched", "only_ncms", "moved"]].astype(int)
    assert (counts["members"] == counts["matched"] + counts["only_ncms"] + counts["moved"]).all()
    assert counts["members"].sum() == len(ncms)
    assert set(links["link_type"]) <= {"1:1", "split", "merged", "unmatched"}
    assert (links["link_type"] == "1:1").mean() > 0.9
    keys = links[["township", "village", "household_id"]].fillna("\uffff")
    assert keys.equals(keys.sort_values(["township", "village", "household_id"]))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Households: NCMS to registry" in html
    assert "household_links.xlsx" in html
    book = load_workbook(out / "household_links.xlsx", read_only=True)
    assert book.worksheets[0].max_row == len(links) + 1


def _random_world(rng):
    """Registry households of 1-5 persons; NCMS households copying most of them, with people
    moved, merged, duplicated, dropped and added, and some NCMS records left unlinked."""
    rows, n_person = [], 0
    persons_of = {}
    for r in range(int(rng.integers(3, 12))):
        people = list(range(n_person, n_person + int(rng.integers(1, 6))))
        n_person += len(people)
        persons_of[r] = people
        for k, p in enumerate(people):
            rows.append(("police", f"GA{p}", f"R{r}", "户主" if k == 0 else "子", f"人{p}",
                         SUNJIA, f"p{p}"))
    registry_households = list(persons_of)
    for h in range(int(rng.integers(2, 10))):
        base = persons_of[int(rng.choice(registry_households))]
        people = [p for p in base if rng.random() < 0.8]
        if rng.random() < 0.3:  # someone from another registry household (moved, or a merge)
            other = persons_of[int(rng.choice(registry_households))]
            people.append(int(rng.choice(other)))
        extra = int(rng.integers(0, 2))  # persons the registry does not know
        people += list(range(n_person, n_person + extra))
        n_person += extra
        for k, p in enumerate(dict.fromkeys(people)):
            rows.append(("ncms", f"NH{h}-{k}", f"N{h}", "户主" if k == 0 else "子", f"人{p}",
                         SUNJIA, f"p{p}"))
    records, clusters = world(rows)
    unlinked = rng.random(len(clusters)) < 0.05
    return records, clusters[~(unlinked & (clusters["source"] == "ncms").to_numpy())]


def _reference(records: pd.DataFrame, clusters: pd.DataFrame) -> dict:
    """The rules of linkage/outputs/households.py read one household at a time."""
    entity = dict(zip(zip(clusters["source"], clusters["record_id"]), clusters["entity_id"]))
    rec = records.assign(e=[entity.get(k) for k in zip(records["source"], records["record_id"])])
    reg = rec[rec["source"] == "police"]
    ncms = rec[(rec["source"] == "ncms") & rec["household_id"].notna()]
    homes = {}  # entity -> registry households
    for e, hh in zip(reg["e"], reg["household_id"]):
        homes.setdefault(e, []).append(hh)
    listed_in = ncms.dropna(subset=["e"]).groupby("e")["household_id"].nunique()
    first_of_registry = {hh: i for i, hh in enumerate(dict.fromkeys(reg["household_id"]))}
    best = {}
    for hid, group in ncms.groupby("household_id", sort=False):
        score = {}
        for e, relation in zip(group["e"], group["relation"]):
            for hh in set(homes.get(e, [])) if e is not None else ():
                own, n, head = score.get(hh, (0, 0, False))
                score[hh] = (own + (listed_in.get(e, 0) < 2), n + 1, head or relation == "户主")
        ranked = sorted(score, key=lambda hh: (-score[hh][0], -score[hh][1], -score[hh][2],
                                               first_of_registry[hh]))
        best[hid] = (ranked[0], score[ranked[0]][0]) if ranked else (None, 0)
    owners = {}
    for main, own in best.values():
        if main is not None and own > 0:
            owners[main] = owners.get(main, 0) + 1
    out = {}
    for hid, group in ncms.groupby("household_id", sort=False):
        main, own = best[hid]
        if main is not None and own == 0 and owners.get(main, 0) >= 1:
            main = None
        mine = set(group["e"].dropna())
        matched = sum(e is not None and main in homes.get(e, []) for e in group["e"])
        only_ncms = sum(e is None or e not in homes for e in group["e"])
        in_main = reg[reg["household_id"] == main] if main is not None else reg.iloc[:0]
        out[hid] = {"main": main, "matched": matched, "only_ncms": only_ncms,
                    "moved": len(group) - matched - only_ncms,
                    "only_registry": int((~in_main["e"].isin(mine)).sum())}
    return out
