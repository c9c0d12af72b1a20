"""The three source exports (police registry, NCMS roster, urban roster) and their columns.

Why: each source selects its own persons, orders them as its export does, and writes every
field in its own habits (the NCMS clerk's date format, gender coding and village spelling);
the errors come from errors.py and dates.py, so this module reads as what each source is.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.synth import names as pools
from linkage.synth.arrays import CN, NUM, zfill
from linkage.synth.dates import DATE_FORMATS, digit_off, format_dates
from linkage.synth.errors import apply_errors, apply_id_error, apply_name_error, gender_text
from linkage.synth.geo import Geo
from linkage.synth.households import EVENT_FIELD
from linkage.synth.params import (
    CHILD_NO_ID,
    ENROL,
    ETHNICITY,
    FEMALE,
    MALE,
    RATES,
    REF_YEAR,
    D,
    S,
)
from linkage.synth.people import People
from linkage.synth.receipts import RECEIPT_COLUMNS
from linkage.synth.records import ErrorLog, select_records

POLICE_COLUMNS = ["人员编号", "户号", "姓名", "公民身份号码", "性别", "民族", "出生日期",
                  "与户主关系", "苏木乡镇", "嘎查村", "住址", "人员状态"]
NCMS_COLUMNS = ["参合编号", "家庭编号", "户主姓名", "成员姓名", "身份证号", "性别", "出生日期",
                "与户主关系", "乡镇", "村", "参合档次", "补助类别", "缴费金额", "收据号", "录入员",
                *RECEIPT_COLUMNS]  # the receipt's columns come last, from receipts.py
URBAN_COLUMNS = ["ryid", "xm", "sfzh", "xb", "csrq", "jdmc", "sqmc", "cbrq", "dc"]


def _record_ids(rng, prefix: str, n: int, width: int, start: int) -> np.ndarray:
    """Increasing record numbers with gaps (deleted records), as real exports have."""
    return prefix + zfill(start + np.cumsum(rng.integers(1, 4, n)), width)


def _width(values: np.ndarray, least: int) -> int:
    """Digits a code part needs: `least`, or more in a world too large for that."""
    return max(least, len(str(int(values.max())))) if len(values) else least


def household_order(rng: np.random.Generator, p: People) -> np.ndarray:
    """Rank of each household (a 户 split off included) in an export sorted by county, township,
    village."""
    order = np.lexsort((rng.random(len(p.hh_village)), p.hh_village, p.hh_unit, p.hh_county))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _addresses(p: People, geo: Geo, hh: np.ndarray) -> np.ndarray:
    """Registered address, shared per village and group (one string object per distinct value)."""
    key = p.hh_village[hh] * 16 + p.hh_group[hh]
    uniq, inv = np.unique(key, return_inverse=True)
    v, g = uniq // 16, uniq % 16
    u = geo.vil_unit[v]
    text = (geo.province + geo.prefecture + geo.county_name[geo.unit_county[u]] + geo.unit_name[u]
            + geo.vil_name[v] + np.where(g > 0, CN[g] + "组", ""))
    return text[inv]


def _log_events(log: ErrorLog, source: str, ids: np.ndarray, events: np.ndarray) -> None:
    """The household events of households.py, each under its field (household or relation)."""
    for label, fld in EVENT_FIELD.items():
        log.add(source, ids, fld, np.where(events == label, label, ""))


def _view_position(rel: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Order within a household as listed: the head the source lists first, then as generated."""
    return np.where(rel == "户主", -1.0, pos.astype(float))


def police_export(rng: np.random.Generator, p: People, geo: Geo, hh_rank: np.ndarray,
                  log: ErrorLog) -> tuple[pd.DataFrame, np.ndarray]:
    """The registry: one record per registered person, a few registered twice."""
    reg = np.flatnonzero(~p.unregistered)
    rel = p.police_rel[reg]
    hh = p.police_hh[reg]
    # double registrations: mostly women married out and never removed from the parents' household
    married = ((p.role[reg] == S) & (p.gender[reg] == FEMALE)) | (p.role[reg] == D)
    p_double = np.where(married, 2.0, 0.6) * ENROL["police_double"]
    dbl = (rng.random(len(reg)) < p_double) & (p.dead[reg] == 0)
    dup = reg[dbl]
    listed = np.unique(hh)  # households the registry holds
    by_county = listed[np.argsort(p.hh_county[listed], kind="stable")]
    c_start = np.searchsorted(p.hh_county[by_county], np.arange(len(geo.share)))
    c_count = np.bincount(p.hh_county[listed], minlength=len(geo.share))
    cty = p.hh_county[p.hh[dup]]
    dup_hh = by_county[c_start[cty] + (rng.random(len(dup)) * c_count[cty]).astype(int)]
    idx = np.concatenate([reg, dup])
    hh = np.concatenate([hh, dup_hh])
    rel = np.concatenate([rel, np.where(p.gender[dup] == MALE, "子", "女")])
    pos = np.concatenate([_view_position(rel[: len(reg)], p.pos[reg]), np.full(len(dup), 9.0)])
    order = np.lexsort((pos, hh_rank[hh]))
    idx, hh, rel = idx[order], hh[order], rel[order]
    is_dup = np.concatenate([np.zeros(len(reg), bool), np.ones(len(dup), bool)])[order]
    n = len(idx)
    ids = _record_ids(rng, "GA", n, 9, 100_000_000)
    rec = select_records(p, geo, idx, gbk=False)
    names, rid, (y, m, d, ym) = apply_errors(rng, rec, "police", np.ones(n), ids, log)
    # the second registration differs a little: a homophone, the other region code, a date digit
    dpos = np.flatnonzero(is_dup)
    kind = rng.integers(0, 4, len(dpos))
    for k, cls, fld, values, apply in ((0, "name_homophone", "name", names, apply_name_error),
                                       (1, "id_region_variant", "id", rid, apply_id_error)):
        sub = dpos[(kind == k) & (rec.y[dpos] < 1999)] if k == 1 else dpos[kind == k]
        new = apply(cls, rec, sub, rng.random((len(sub), 2)))
        ok = np.array([x is not None for x in new], dtype=bool)
        values[sub[ok]] = np.array(new, dtype=object)[ok]
        log.mark("police", ids[sub[ok]], fld, cls)
    sub = dpos[kind == 2]
    digit_off(rng, y, d, sub)
    log.mark("police", ids[sub], "birth_date", "date_digit_off")
    log.mark("police", ids[dpos], "record", "double_registration")
    _log_events(log, "police", ids, np.where(is_dup, "", p.police_event[idx]))
    hukou = zfill(100_000_000 + hh_rank * 7 + 3, 9)
    unit, vil = p.hh_unit[hh], p.hh_village[hh]
    frame = pd.DataFrame({
        "人员编号": ids, "户号": hukou[hh], "姓名": names, "公民身份号码": rid,
        "性别": np.where(p.gender[idx] == MALE, "男", "女"),
        "民族": ETHNICITY[p.eth[idx]],
        "出生日期": format_dates(y, m, d, np.zeros(n, dtype=int), ym),
        "与户主关系": rel, "苏木乡镇": geo.unit_name[unit], "嘎查村": geo.vil_name[vil],
        "住址": _addresses(p, geo, hh),
        "人员状态": np.where(p.dead[idx] == 1, "死亡", "正常"),
    })
    return frame, idx


def _ncms_members(rng, p: People) -> tuple[np.ndarray, ...]:
    """Who is on the NCMS roster, in which household, with which relation; plus the duplicates."""
    n = len(p)
    rural = ~p.hh_urban[p.hh]
    hh_in = rng.random(len(p.hh_village)) < ENROL["ncms_household"]
    p_person = np.select([p.dead == 1, p.dead == 2],
                         [ENROL["ncms_dead_listed"], ENROL["ncms_dead_unlisted"]],
                         ENROL["ncms_person"])
    p_person = np.where(p.ncms_listed >= 0, p.ncms_listed, p_person)
    member = np.flatnonzero(rural & hh_in[p.ncms_hh] & (rng.random(n) < p_person))
    hh = p.ncms_hh[member]
    rel = p.ncms_rel[member]
    pos = _view_position(rel, p.pos[member])
    # a married daughter also left in her parents' household (same county, her surname if possible)
    married = member[((p.role[member] == S) & (p.gender[member] == FEMALE)) | (p.role[member] == D)]
    twice = rng.random(len(married)) < ENROL["married_daughter_twice"]
    married = married[(p.by[married] >= 1965) & twice]
    rural_heads = np.flatnonzero((p.ncms_rel == "户主") & rural & hh_in[p.ncms_hh])
    pool: dict[tuple[int, str], list[int]] = {}
    for h in rural_heads:
        pool.setdefault((int(p.hh_county[p.ncms_hh[h]]), p.sn[h]), []).append(int(p.ncms_hh[h]))
    by_county: dict[int, list[int]] = {}
    for h in rural_heads:
        by_county.setdefault(int(p.hh_county[p.ncms_hh[h]]), []).append(int(p.ncms_hh[h]))
    r = rng.random(len(married))
    home = []
    for k, i in enumerate(married):
        cty = int(p.hh_county[p.ncms_hh[i]])
        options = ([h for h in pool.get((cty, p.sn[i]), []) if h != p.ncms_hh[i]]
                   or by_county[cty])
        home.append(options[int(r[k] * len(options))])
    # a few people keyed twice into the same household
    twice = member[rng.random(len(member)) < ENROL["ncms_entered_twice"]]
    idx = np.concatenate([member, married, twice])
    hh = np.concatenate([hh, np.array(home, dtype=np.int64), p.ncms_hh[twice]])
    rel = np.concatenate([rel, np.full(len(married), "女", dtype=object), p.ncms_rel[twice]])
    pos = np.concatenate([pos, np.full(len(married), 20.0),
                          _view_position(p.ncms_rel[twice], p.pos[twice]) + 0.5])
    kind = np.concatenate([np.zeros(len(member), np.int8), np.ones(len(married), np.int8),
                           np.full(len(twice), 2, np.int8)])
    return idx, hh, rel, pos, kind


def _relation_spelling(rng, rel: np.ndarray, gender: np.ndarray,
                       style: np.ndarray) -> np.ndarray:
    """Relation as a clerk writes it: the clerk's habit mostly, the registry's word sometimes."""
    out = rel.copy()
    text = rel.astype(str)
    family = np.where(np.char.endswith(text, "子") & (rel != "孙子"), "子",
                      np.where(np.char.endswith(text, "女") & (rel != "孙女"), "女", rel))
    family = np.where((family == "配偶") & (gender == MALE), "丈夫", family)
    choice = np.where(rng.random(len(rel)) < 0.75, style, rng.integers(0, 4, len(rel)))
    for key, spellings in pools.RELATION_SPELLINGS.items():
        i = np.flatnonzero((family == key) & (choice > 0))
        if len(i):
            out[i] = np.array(spellings, dtype=object)[(choice[i] - 1) % len(spellings)]
    return out


def ncms_export(rng: np.random.Generator, p: People, geo: Geo, hh_rank: np.ndarray,
                log: ErrorLog) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The rural roster, by household, keyed by village clerks of varying care.

    Returns the frame, the person of each record and the household (an NCMS-view index) it is
    listed in.
    """
    idx, hh, rel, pos, kind = _ncms_members(rng, p)
    order = np.lexsort((pos, hh_rank[hh]))
    idx, hh, rel, kind = idx[order], hh[order], rel[order], kind[order]
    n = len(idx)
    ids = _record_ids(rng, "NH", n, 10, 1_000_000_000)
    vil = p.hh_village[hh]
    clerk = geo.vil_clerk[vil]
    n_clerks = len(geo.clerk_code)
    care = np.clip(rng.lognormal(0.0, 0.5, n_clerks), 0.25, 3.5)
    care = care / care.mean()
    factor = care[clerk]
    rec = select_records(p, geo, idx, gbk=True)
    # small children go by their milk name here; some have no ID and only a birth year
    rec.milk = np.where(kind == 1, "", p.milk[idx])
    age = REF_YEAR - p.by[idx]
    p_no_id = np.select([age <= 6, age <= 14], [CHILD_NO_ID["age_0_6"], CHILD_NO_ID["age_7_14"]],
                        0.0)
    rec.no_id = rng.random(n) < np.minimum(p_no_id * factor, 0.95)
    names, rid, (y, m, d, ym) = apply_errors(rng, rec, "ncms", factor, ids, log)
    # a character GBK cannot hold is replaced by one that sounds alike
    rare = np.flatnonzero(p.rare[idx])
    gbk_sub = str.maketrans(pools.RARE_NOT_GBK)
    names[rare] = np.array([x.translate(gbk_sub) for x in names[rare]], dtype=object)
    log.mark("ncms", ids[rare], "name", "name_gbk_substitute")
    # the clerk's habits: date format, gender coding, relation words, village and group spelling
    fmt_pref = rng.choice(len(DATE_FORMATS), n_clerks, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.05, 0.08])
    fmt = np.where(rng.random(n) < 0.7, fmt_pref[clerk],
                   rng.choice(len(DATE_FORMATS), n, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.05, 0.08]))
    clerk_codes_gender = rng.random(n_clerks) < 0.35
    coded = np.where(rng.random(n) < 0.85, clerk_codes_gender[clerk], rng.random(n) < 0.5)
    gender = gender_text(rng, p.gender[idx], coded, RATES["ncms"], factor, "ncms", ids, log)
    relation = _relation_spelling(rng, rel, p.gender[idx], rng.integers(0, 4, n_clerks)[clerk])
    suffix_pref = rng.choice(3, n_clerks, p=[0.8, 0.13, 0.07])
    suffix_style = np.where(rng.random(n) < 0.85, suffix_pref[clerk], rng.integers(0, 3, n))
    canon = geo.vil_suffix[vil]
    suffix = np.select([suffix_style == 0, suffix_style == 1],
                       [canon, np.where(canon == "嘎查", "村", "嘎查")], "")
    group_pref = rng.choice(3, n_clerks, p=[0.5, 0.35, 0.15])
    gstyle = np.where(rng.random(n) < 0.85, group_pref[clerk], rng.integers(0, 3, n))
    grp = p.hh_group[hh]
    group_text = np.select([gstyle == 0, gstyle == 1], [CN[grp] + "组", NUM[grp] + "组"], "")
    village = geo.vil_stem[vil] + suffix + group_text
    log.add("ncms", ids, "village", np.where(suffix != canon, "village_suffix_variant", ""))
    unit = p.hh_unit[hh]
    ustyle = rng.random(n)
    other = np.where(geo.unit_suffix[unit] == "乡", "镇", "乡")
    township = np.where(ustyle < 0.90, geo.unit_name[unit],
                        np.where(ustyle < 0.96, geo.unit_stem[unit], geo.unit_stem[unit] + other))
    # households: family code, head's name as keyed, tier, subsidy, payment, receipt
    n_hh = len(p.hh_village)
    hh_u = np.unique(hh)
    fam_rank = np.zeros(n_hh, dtype=np.int64)
    fam_rank[hh_u] = np.arange(len(hh_u))
    first_in_village = np.full(len(geo.vil_unit), len(hh_u))
    np.minimum.at(first_in_village, p.hh_village[hh_u], fam_rank[hh_u])
    ordinal = fam_rank[hh] - first_in_village[vil] + 1
    county = p.hh_county[hh]
    county_text = geo.county_code.astype(str).astype(object)
    unit_no, vil_no = unit - geo.cu_start[county, 0], vil - geo.unit_vstart[unit]
    fam_code = (county_text[county] + zfill(unit_no, _width(unit_no, 2))
                + zfill(vil_no, _width(vil_no, 2)) + zfill(ordinal, _width(ordinal, 4)))
    heads = np.flatnonzero(p.ncms_rel == "户主")
    head_of = np.zeros(n_hh, dtype=np.int64)  # the head NCMS lists, for every NCMS household
    head_of[p.ncms_hh[heads]] = heads
    head_name = p.name[head_of]
    rare_heads = np.flatnonzero(p.rare[head_of])
    head_name[rare_heads] = np.array([x.translate(gbk_sub) for x in head_name[rare_heads]],
                                     dtype=object)
    is_head = (rel == "户主") & (kind == 0)
    head_name[hh[is_head]] = names[is_head]
    tier_hh = np.where(rng.random(n_hh) < 0.75, "一档", "二档")
    dibao_hh = rng.random(n_hh) < 0.04
    single = np.bincount(p.ncms_hh, minlength=n_hh)[hh] == 1
    r = rng.random(n)
    subsidy = np.select(
        [dibao_hh[hh], single & (age >= 60) & (r < 0.15), single & (age >= 60) & (r < 0.18),
         (p.gender[idx] == MALE) & (age >= 60) & (r > 0.99), r < 0.008],
        ["低保", "五保", "三无", "优抚", "重度残疾"], "").astype(object)
    fee = np.where(tier_hh[hh] == "一档", "250.00", "350.00").astype(object)
    fee[subsidy == "低保"] = "125.00"
    fee[np.isin(subsidy, ["五保", "三无", "优抚", "重度残疾"])] = "0.00"
    receipt = zfill(10_000_000 + np.cumsum(rng.integers(1, 3, len(hh_u))), 8)
    frame = pd.DataFrame({
        "参合编号": ids, "家庭编号": fam_code, "户主姓名": head_name[hh], "成员姓名": names,
        "身份证号": rid, "性别": gender, "出生日期": format_dates(y, m, d, fmt, ym),
        "与户主关系": relation, "乡镇": township, "村": village, "参合档次": tier_hh[hh],
        "补助类别": subsidy, "缴费金额": fee, "收据号": receipt[fam_rank[hh]],
        "录入员": geo.clerk_code[clerk],
    })
    log.add("ncms", ids, "record", np.select([kind == 1, kind == 2],
                                             ["married_daughter_twice", "entered_twice"], ""))
    _log_events(log, "ncms", ids, np.where(kind == 1, "", p.ncms_event[idx]))
    return frame, idx, hh


def urban_export(rng: np.random.Generator, p: People, geo: Geo,
                 log: ErrorLog) -> tuple[pd.DataFrame, np.ndarray]:
    """The urban roster, per person: town residents, and pupils, workers, migrants from villages."""
    n_p = len(p)
    urban = p.hh_urban[p.hh]
    age = REF_YEAR - p.by
    p_urban = np.select([age < 18, age >= 60], [ENROL["urban_child"], ENROL["urban_elderly"]],
                        ENROL["urban_adult"])
    p_urban = np.where(p.dead == 1, ENROL["urban_dead"], p_urban)
    r = rng.random(n_p)
    town = urban & (r < p_urban)
    pupil = ~urban & (age >= 6) & (age <= 18) & (p.dead == 0) & (r < ENROL["pupil_in_urban"])
    worker = (~urban & (p.by >= 1965) & (p.by <= 1998) & ~p.unregistered & (p.dead == 0)
              & (r < ENROL["worker_in_urban"]))
    migrant = ~urban & p.unregistered & (r < ENROL["migrant_rural_in_urban"])
    idx = np.flatnonzero(town | pupil | worker | migrant)
    hh = p.hh[idx]
    county = p.hh_county[hh]
    # where they are enrolled: their street and community, a school, or a town they work in
    unit = p.hh_unit[hh].copy()
    vil = p.hh_village[hh].copy()
    away = ~urban[idx]
    draw = rng.random(int(away.sum())) * geo.cu_count[county[away], 1]
    cu = geo.cu_start[county[away], 1] + draw.astype(int)
    unit[away] = cu
    vil[away] = geo.village_in(cu, rng.random(len(cu)))
    jdmc, sqmc = geo.unit_name[unit], geo.vil_name[vil]
    school = pupil[idx]
    home = p.hh_unit[hh[school]]
    jdmc[school] = geo.unit_name[home]
    sqmc[school] = geo.unit_stem[home] + np.where(age[idx[school]] < 12, "中心小学", "中学")
    order = np.lexsort((rng.random(len(idx)), sqmc.astype(str), jdmc.astype(str)))
    idx, jdmc, sqmc, school = idx[order], jdmc[order], sqmc[order], school[order]
    n = len(idx)
    ids = _record_ids(rng, "CZ", n, 10, 2_000_000_000)
    rec = select_records(p, geo, idx, gbk=False)
    names, rid, (y, m, d, ym) = apply_errors(rng, rec, "urban", np.ones(n), ids, log)
    fmt = rng.choice(3, n, p=[0.05, 0.93, 0.02])  # iso, compact, slash
    gender = gender_text(rng, p.gender[idx], np.ones(n, dtype=bool), RATES["urban"], np.ones(n),
                          "urban", ids, log)
    start = np.datetime64("2019-09-01")
    days = np.where(school, rng.integers(0, 30, n) + np.where(rng.random(n) < 0.5, 0, 366),
                    rng.integers(0, 487, n))
    when = start + days
    cbrq = np.datetime_as_string(when, unit="D").astype(object)
    frame = pd.DataFrame({
        "ryid": ids, "xm": names, "sfzh": rid, "xb": gender,
        "csrq": format_dates(y, m, d, fmt, ym), "jdmc": jdmc, "sqmc": sqmc, "cbrq": cbrq,
        "dc": np.where(rng.random(n) < 0.8, "1", "2"),
    })
    labels = ["pupil_enrolled_by_school", "rural_worker_in_town", "migrant_from_village"]
    kind = np.select([pupil[idx], worker[idx], migrant[idx]], labels, "")
    log.add("urban", ids, "record", kind)
    return frame, idx
