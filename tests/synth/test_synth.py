"""The synthetic world: deterministic, exact truth, real encodings, and every error class present.

Error classes are detected here by comparing a record with the same person's police record (through
the truth file), independently of the generator's own error log.
"""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pypinyin import Style, lazy_pinyin
from stdnum.iso7064 import mod_11_2

from linkage.synth import (
    NCMS_COLUMNS,
    POLICE_COLUMNS,
    RATES,
    URBAN_COLUMNS,
    generate_world,
    resident_ids,
    synth_main,
    write_world,
)
from linkage.synth import names as pools

PERSONS, SEED = 5000, 7


@pytest.fixture(scope="module")
def world():
    return generate_world(PERSONS, seed=SEED)


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):
    return write_world(world, tmp_path_factory.mktemp("synth"))


def _with_police(world, source: str) -> pd.DataFrame:
    """Records of one source beside the same person's police record (persons registered once)."""
    frame = {"ncms": world.ncms, "urban": world.urban}[source]
    rid = {"ncms": "参合编号", "urban": "ryid"}[source]
    truth = world.truth
    pol = world.police.merge(truth[truth.source == "police"], left_on="人员编号",
                             right_on="record_id")
    pol = pol[~pol.person_id.duplicated(keep=False)].set_index("person_id")
    out = frame.merge(truth[truth.source == source], left_on=rid, right_on="record_id")
    return out.join(pol, on="person_id", how="inner", rsuffix="_police")


@pytest.fixture(scope="module")
def ncms(world):
    return _with_police(world, "ncms")


@pytest.fixture(scope="module")
def urban(world):
    return _with_police(world, "urban")


# ---------------------------------------------------------------- determinism, truth, files
def test_same_seed_same_world_other_seed_other_world():
    a, b, c = generate_world(800, seed=3), generate_world(800, seed=3), generate_world(800, seed=4)
    for name in ("police", "ncms", "urban", "truth", "errors"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.police["姓名"].equals(c.police["姓名"])
    assert not a.truth.equals(c.truth)


def test_exact_columns(world):
    assert list(world.police.columns) == POLICE_COLUMNS
    assert list(world.ncms.columns) == NCMS_COLUMNS
    assert list(world.urban.columns) == URBAN_COLUMNS
    assert list(world.truth.columns) == ["source", "record_id", "person_id"]


def test_every_record_in_truth_exactly_once(world):
    t = world.truth
    assert not t.duplicated(["source", "record_id"]).any()
    for source, frame, rid in (("police", world.police, "人员编号"),
                               ("ncms", world.ncms, "参合编号"),
                               ("urban", world.urban, "ryid")):
        assert frame[rid].is_unique
        assert set(t.loc[t.source == source, "record_id"]) == set(frame[rid])
        assert (t.source == source).sum() == len(frame)
    assert t.person_id.nunique() <= PERSONS
    assert world.police["人员编号"].str.fullmatch(r"GA\d{9}").all()
    assert world.ncms["参合编号"].str.fullmatch(r"NH\d+").all()
    assert world.urban["ryid"].str.fullmatch(r"CZ\d+").all()


def test_files_and_encodings(world, files):
    raw = files["ncms"].read_bytes()
    raw.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    ncms = pd.read_csv(files["ncms"], encoding="gbk", dtype=str, keep_default_na=False)
    assert list(ncms.columns) == NCMS_COLUMNS and len(ncms) == len(world.ncms)
    assert files["urban"].read_bytes().startswith(b"\xef\xbb\xbf")
    assert not files["police"].read_bytes().startswith(b"\xef\xbb\xbf")
    police = pd.read_csv(files["police"], encoding="utf-8", dtype=str, keep_default_na=False)
    assert police["公民身份号码"].tolist() == world.police["公民身份号码"].tolist()
    truth = pd.read_csv(files["truth"], dtype=str)
    assert list(truth.columns) == ["source", "record_id", "person_id"]
    assert set(truth.source) == {"police", "ncms", "urban"}
    meta = json.loads(files["world"].read_text(encoding="utf-8"))
    assert meta["seed"] == SEED and meta["persons"] == PERSONS
    assert meta["counts"]["ncms"] == len(world.ncms)


def test_synth_main_writes_and_reports(tmp_path, capsys):
    paths = synth_main(300, 1, tmp_path / "w")
    assert {"police", "ncms", "urban", "truth", "world"} <= set(paths)
    assert all(p.exists() for p in paths.values())
    assert "persons" in capsys.readouterr().err


def test_vectorised_check_digit_agrees_with_stdnum():
    rng = np.random.default_rng(0)
    n = 500
    ids = resident_ids(rng.integers(110000, 660000, n), rng.integers(1920, 2020, n),
                       rng.integers(1, 13, n), rng.integers(1, 29, n), rng.integers(0, 1000, n))
    assert all(mod_11_2.is_valid(x) for x in ids)


# ---------------------------------------------------------------- the people
def test_police_ids_mostly_valid_with_old_and_new_region_codes(world):
    p = world.police
    valid = p["公民身份号码"].map(lambda x: len(x) == 18 and mod_11_2.is_valid(x))
    assert valid.mean() > 0.99
    born = p["出生日期"].str[:4].astype(int)
    assert (p["公民身份号码"].str.startswith("1523") & (born < 1999)).sum() > 100
    assert (p["公民身份号码"].str.startswith("1505") & (born < 1999)).sum() > 100
    assert not (p["公民身份号码"].str.startswith("1523") & (born >= 2000)).any()
    odd = p["公民身份号码"].str[16].astype(int) % 2 == 1
    assert ((p["性别"] == "男") == odd)[valid].mean() > 0.99


def test_population_shape(world):
    p = world.police
    assert 0.12 < (p["民族"] == "蒙古族").mean() < 0.32
    assert p["姓名"].str.contains("·").any()
    assert {"户主", "配偶", "长子", "长女", "孙子", "父亲", "母亲", "儿媳"} <= set(p["与户主关系"])
    assert p.groupby("户号").size().between(1, 9).all()
    assert (p["人员状态"] == "死亡").any()
    assert p["嘎查村"].str.endswith("嘎查").any() and p["嘎查村"].str.endswith("村").any()
    assert p["苏木乡镇"].str.endswith("苏木").any() and p["苏木乡镇"].str.endswith("乡").any()
    heteronyms = ("单", "曾", "仇", "解", "翟", "朴", "查", "缪", "区", "覃")
    assert p["姓名"].str.startswith(heteronyms).any()
    assert world.counts["rural"] > PERSONS / 2
    # children carry their father's surname (Han-style names)
    heads = p[p["与户主关系"] == "户主"].set_index("户号")
    kids = p[p["与户主关系"].str.fullmatch("[长次三四]子") & ~p["姓名"].str.contains("·")]
    kids = kids.join(heads[["姓名", "性别"]], on="户号", rsuffix="_head")
    kids = kids[(kids["性别_head"] == "男") & (kids["民族"] == "汉族")]
    assert (kids["姓名"].str[0] == kids["姓名_head"].str[0]).mean() > 0.95
    # born by role: elderly parents old, grandchildren young
    born = p["出生日期"].str[:4].astype(int)
    assert born[p["与户主关系"] == "父亲"].max() <= 1975
    assert born[p["与户主关系"].isin(["孙子", "孙女"])].min() >= 1975


def test_twins(world):
    p = world.police
    kids = p[p["与户主关系"].str.fullmatch(".[子女]")]
    found = 0
    for _, g in kids.groupby(["户号", "出生日期"]):
        if len(g) < 2:
            continue
        a, b = g.iloc[0], g.iloc[1]
        apart = (len(a["姓名"]) == len(b["姓名"])
                 and sum(x != y for x, y in zip(a["姓名"], b["姓名"])) == 1)
        seq = abs(int(a["公民身份号码"][14:17]) - int(b["公民身份号码"][14:17]))
        found += apart and seq in (1, 2)
    assert found >= 3


def test_hard_negatives(world):
    t = world.truth
    p = world.police.merge(t[t.source == "police"], left_on="人员编号", right_on="record_id")
    same = p.groupby(["姓名", "出生日期"]).person_id.nunique()
    assert (same > 1).sum() >= 3  # same-name, same-birthdate strangers
    heads = p[p["与户主关系"] == "户主"].set_index("户号")["姓名"]
    sons = p[p["与户主关系"].str.fullmatch(".子")]
    # father and son
    assert (sons["姓名"].to_numpy() == heads.reindex(sons["户号"]).to_numpy()).any()


def test_unverifiable_and_deceased(world):
    t = world.truth
    in_police = set(t.loc[t.source == "police", "person_id"])
    insured = t[t.source != "police"]
    assert (~insured.person_id.isin(in_police)).sum() >= 5  # migrants missing from the registry
    dead = world.police.loc[world.police["人员状态"] == "死亡", "人员编号"]
    dead_people = set(t.loc[t.record_id.isin(dead), "person_id"])
    assert dead_people & set(t.loc[t.source == "ncms", "person_id"])  # still on a roster


def test_duplicate_enrolments(world):
    t = world.truth
    ncms = world.ncms.merge(t[t.source == "ncms"], left_on="参合编号", right_on="record_id")
    urban = world.urban.merge(t[t.source == "urban"], left_on="ryid", right_on="record_id")
    # pupils enrolled by their school and by their family
    pupils = urban[urban["sqmc"].str.endswith(("小学", "中学"))]
    assert pupils.person_id.isin(ncms.person_id).sum() >= 10
    # a married daughter in her parents' household and her husband's
    fam = ncms.groupby("person_id")["家庭编号"].nunique()
    assert (fam > 1).sum() >= 3
    # keyed twice into the same household
    same = ncms.groupby(["person_id", "家庭编号"]).size()
    assert (same > 1).sum() >= 3
    # migrants (missing from the registry) in both rosters
    police = set(t.loc[t.source == "police", "person_id"])
    both = set(ncms.person_id) & set(urban.person_id)
    assert len(both - police) >= 1
    # the police registry itself holds a few double registrations
    assert (t[t.source == "police"].person_id.value_counts() > 1).sum() >= 3


def test_ncms_households_hold_together(world):
    n = world.ncms
    assert n.groupby("家庭编号")["收据号"].nunique().max() == 1
    assert n.groupby("收据号")["家庭编号"].nunique().max() == 1
    assert n["家庭编号"].str.fullmatch(r"\d{14}").all()
    assert (n.groupby("家庭编号")["户主姓名"].nunique() == 1).all()
    assert set(n["参合档次"]) == {"一档", "二档"}
    assert {"低保", "五保", "重度残疾"} <= set(n["补助类别"])


# ---------------------------------------------------------------- error classes
def test_every_ncms_error_class_in_the_log(world):
    logged = set(world.errors.loc[world.errors.source == "ncms", "error"])
    assert set(RATES["ncms"]) <= logged
    urban = set(world.errors.loc[world.errors.source == "urban", "error"])
    assert len(urban & set(RATES["urban"])) >= 18
    rates = world.errors[world.errors.field.isin(["name", "id", "birth_date", "gender"])]
    share = rates.groupby("source").record_id.nunique() / pd.Series(
        {"police": len(world.police), "ncms": len(world.ncms), "urban": len(world.urban)})
    assert 0.2 < share["ncms"] < 0.4
    assert 0.05 < share["urban"] < 0.15
    assert share["police"] < 0.03


_T2S = {t: s for s, t in pools.SIMPLIFIED_TO_TRADITIONAL.items()}
_LOOK = {(a, b) for g in pools.LOOKALIKE_GROUPS for a in g for b in g if a != b}
_DOTS = "·•．・."


def _one_apart(v: str, p: str) -> tuple[str, str] | None:
    if len(v) != len(p):
        return None
    diff = [(a, b) for a, b in zip(v, p) if a != b]
    return diff[0] if len(diff) == 1 else None


def _homophone(v, p):
    d = _one_apart(v, p)
    return d is not None and (lazy_pinyin(d[0], style=Style.TONE3)
                              == lazy_pinyin(d[1], style=Style.TONE3))


def _translit(v, p):
    return any(p.replace(k, x, 1) == v
               for k, xs in pools.MONGOL_VARIANTS.items() if k in p for x in xs)


def _surname_dropped(v, p):
    head = p[: len(p) - len(v)].rstrip("·")
    return v != p and p.endswith(v) and head in {s for s, _ in pools.MONGOL_SURNAMES}


NAME_DETECTORS = {
    "homophone": _homophone,
    "lookalike": lambda v, p: _one_apart(v, p) in _LOOK,
    "traditional": lambda v, p: v != p and "".join(_T2S.get(c, c) for c in v) == p,
    "space": lambda v, p: " " in v and v.replace(" ", "") == p,
    "dropped": lambda v, p: len(v) >= 2 and any(p[:i] + p[i + 1:] == v
                                                for i in range(1, len(p) - 1)),
    "doubled": lambda v, p: any(p[: i + 1] + p[i] + p[i + 1:] == v for i in range(len(p))),
    "swapped": lambda v, p: (len(v) == len(p) >= 3 and v[:-2] == p[:-2]
                             and v[-2:] == p[:-3:-1] != p[-2:]),
    "dot": lambda v, p: v != p and any(c in v + p for c in _DOTS) and
    re.sub(f"[{_DOTS}]", "", v) == re.sub(f"[{_DOTS}]", "", p),
    "surname_dropped": _surname_dropped,
    "translit": _translit,
    "milk": lambda v, p: v != p and (v in pools.MILK_NAMES or v[1:] in pools.MILK_NAMES),
    "cut4": lambda v, p: len(v) == 4 and len(p) > 4 and p.startswith(v),
}


@pytest.mark.parametrize("kind", sorted(NAME_DETECTORS))
def test_ncms_name_errors(ncms, kind):
    hit = [NAME_DETECTORS[kind](v, p) for v, p in zip(ncms["成员姓名"], ncms["姓名"])]
    assert sum(hit) >= 1, kind


def test_urban_name_errors(urban):
    """The urban roster is small at this size and its rates are low: most classes, not each."""
    kinds = ["homophone", "lookalike", "traditional", "space", "dot", "surname_dropped", "translit"]
    pairs = list(zip(urban["xm"], urban["姓名"]))
    found = [k for k in kinds if any(NAME_DETECTORS[k](v, p) for v, p in pairs)]
    assert len(found) >= 4, found


def test_ncms_only_holds_gbk(world):
    for col in NCMS_COLUMNS:
        "".join(world.ncms[col]).encode("gbk")


def _swapped_adjacent(v, p):
    return len(v) == len(p) == 18 and v != p and any(
        p[:i] + p[i + 1] + p[i] + p[i + 2:] == v for i in range(17))


def _parent_number(world):
    """NCMS records of a child carrying the number of someone else in its police household."""
    t = world.truth
    pol = world.police.merge(t[t.source == "police"], left_on="人员编号", right_on="record_id")
    owner = dict(zip(pol["公民身份号码"], zip(pol["person_id"], pol["户号"])))
    rows = _with_police(world, "ncms")
    return sum(1 for v, pid, hh in zip(rows["身份证号"], rows["person_id"], rows["户号"])
               if v in owner and owner[v][0] != pid and owner[v][1] == hh)


ID_DETECTORS = {
    "blank": lambda v, p: v == "",
    "placeholder": lambda v, p: v in {"无", "0", "待补", "不详"},
    "15digit": lambda v, p: len(v) == 15 and v.isdigit() and v == p[:6] + p[8:17],
    "wrong_check": lambda v, p: (len(v) == 18 and v[:17] == p[:17]
                                 and v[17] not in (p[17], p[17].lower())),
    "mistyped": lambda v, p: (len(v) == 18 and v[17] == p[17]
                              and sum(a != b for a, b in zip(v, p)) == 1),
    "swapped": _swapped_adjacent,
    "fullwidth": lambda v, p: bool(re.search("[０-９]", v)),
    "lowercase_x": lambda v, p: v.endswith("x") and v.upper() == p,
    "spaces": lambda v, p: " " in v and v.replace(" ", "") == p,
    "excel_float": lambda v, p: bool(re.fullmatch(r"\d\.\d{1,5}E\+17", v)),
    "excel_000": lambda v, p: v.endswith("000") and v[:15] == p[:15] and not p.endswith("000"),
    "renumbered": lambda v, p: (v != p and len(v) == 18 and v[:14] == p[:14]
                                and mod_11_2.is_valid(v)),
}


@pytest.mark.parametrize("kind", sorted(ID_DETECTORS))
def test_ncms_id_errors(ncms, kind):
    assert any(ID_DETECTORS[kind](v, p)
               for v, p in zip(ncms["身份证号"], ncms["公民身份号码"])), kind


def test_urban_id_errors(urban):
    kinds = ["blank", "mistyped", "swapped", "lowercase_x", "excel_float", "excel_000", "fullwidth",
             "wrong_check", "spaces", "15digit"]
    pairs = list(zip(urban["sfzh"], urban["公民身份号码"]))
    found = [k for k in kinds if any(ID_DETECTORS[k](v, p) for v, p in pairs)]
    assert len(found) >= 5, found


def test_child_entered_with_parents_number(world):
    assert _parent_number(world) >= 1


DATE_PATTERNS = {
    "iso": r"(\d{4})-(\d{2})-(\d{2})", "compact": r"(\d{4})(\d{2})(\d{2})",
    "slash": r"(\d{4})/(\d{1,2})/(\d{1,2})", "dot": r"(\d{4})\.(\d{1,2})\.(\d{1,2})",
    "chinese": r"(\d{4})年(\d{1,2})月(\d{1,2})日", "short": r"(\d{2})\.(\d{1,2})\.(\d{1,2})",
    "excel": r"(\d{5})",
    "year_month": r"\d{4}-\d{2}|\d{6}|\d{4}/\d{1,2}|\d{4}\.\d{1,2}|\d{4}年\d{1,2}月|\d{2}\.\d{1,2}",
}


def _parse(text: str) -> tuple[int, int, int] | None:
    for kind, pattern in DATE_PATTERNS.items():
        m = re.fullmatch(pattern, text)
        if m and kind == "excel":
            d = date(1899, 12, 30) + timedelta(days=int(text))
            return d.year, d.month, d.day
        if m and kind != "year_month":
            y, mo, d = (int(x) for x in m.groups())
            if kind == "short":
                y += 1900 if y > 20 else 2000
            return y, mo, d
    return None


def _as_date(ymd):
    try:
        return date(*ymd)
    except (TypeError, ValueError):
        return None


def _digits(ymd):
    year, month, day = ymd
    return f"{year:04d}{month:02d}{day:02d}"


DATE_DETECTORS = {
    "jan1": lambda v, p: v is not None and v[1:] == (1, 1) and v[0] == p[0] and p[1:] != (1, 1),
    "day_month_swap": lambda v, p: v is not None and p[1] != p[2] and v == (p[0], p[2], p[1]),
    "lunar": lambda v, p: p[0] < 1960 and _as_date(v) is not None and
    15 <= (date(*p) - _as_date(v)).days <= 60,
    "digit_off": lambda v, p: v is not None and v != p and sum(
        a != b for a, b in zip(_digits(v), _digits(p))) == 1,
}


def test_ncms_date_formats_and_errors(ncms):
    texts = ncms["出生日期"]
    for kind, pattern in DATE_PATTERNS.items():
        assert texts.str.fullmatch(pattern).any(), kind
    police = [tuple(int(x) for x in s.split("-")) for s in ncms["出生日期_police"]]
    parsed = [_parse(x) for x in texts]
    excel = [v == p for v, p, x in zip(parsed, police, texts) if re.fullmatch(r"\d{5}", x)]
    assert sum(excel) >= 1
    for kind, found in DATE_DETECTORS.items():
        assert any(found(v, p) for v, p in zip(parsed, police)), kind


def test_urban_dates_mostly_compact(urban):
    assert urban["csrq"].str.fullmatch(r"\d{8}").mean() > 0.85


def test_gender_codes_and_places(ncms, urban):
    assert {"男", "女", "1", "2", ""} <= set(ncms["性别"])
    assert set(urban["xb"]) <= {"1", "2", ""}
    v_gacha = ncms["村"].str.contains("嘎查") & ncms["嘎查村"].str.endswith("村")
    v_cun = ncms["村"].str.contains("村") & ncms["嘎查村"].str.endswith("嘎查")
    assert v_gacha.any() and v_cun.any()
    assert ncms["村"].str.contains(r"\d组").any()
    assert ncms["村"].str.contains("[一二三四五六七八九]组").any()
    assert {"户主", "本人"} <= set(ncms["与户主关系"]) and len(set(ncms["与户主关系"])) > 15
