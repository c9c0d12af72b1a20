"""The numbers that shape the world: household templates, error rates and enrolment rates.

Why a module of its own: these are what one tunes to make the synthetic prefecture look like a
real one, and they read best in one place, apart from the code that draws from them.
"""
from __future__ import annotations

import numpy as np

REF_YEAR = 2020  # the rosters are as of the end of this year

# Roles inside a household (slots of a household template).
# head, spouse, child, married son (lives with his wife), head's father, mother, daughter-in-law,
# grandchild
H, S, C, CM, F, M, D, G = range(8)
MALE, FEMALE = 1, 2
ETHNICITY = np.array(["汉族", "蒙古族", "满族", "回族"], dtype=object)
HAN, MONGOL = 0, 1

# Household templates: slots, share, head's birth years (lo, hi, lo2, hi2, P(first range)),
# P(head is male).
TEMPLATES: list[tuple[tuple[int, ...], float, tuple[int, int, int, int, float], float]] = [
    ((H,), 0.10, (1928, 1958, 1970, 1998, 0.5), 0.55),
    ((H, S), 0.20, (1935, 1965, 1975, 1997, 0.65), 0.92),
    ((H, S, C), 0.22, (1962, 1993, 0, 0, 1.0), 0.92),
    ((H, S, C, C), 0.18, (1962, 1990, 0, 0, 1.0), 0.92),
    ((H, S, C, C, C), 0.05, (1958, 1988, 0, 0, 1.0), 0.95),
    ((H, S, C, M), 0.04, (1962, 1988, 0, 0, 1.0), 1.0),
    ((H, S, C, C, F, M), 0.03, (1962, 1988, 0, 0, 1.0), 1.0),
    ((H, S, CM, D), 0.02, (1938, 1962, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G), 0.06, (1938, 1962, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G, G), 0.05, (1938, 1960, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G, G, G), 0.01, (1938, 1958, 0, 0, 1.0), 0.95),
    ((H, C), 0.04, (1955, 1990, 0, 0, 1.0), 0.25),
    ((H, C, C), 0.01, (1955, 1985, 0, 0, 1.0), 0.25),
    ((H, S, C, C, C, F, M), 0.005, (1962, 1985, 0, 0, 1.0), 1.0),
]
SLOTS = np.full((len(TEMPLATES), 7), -1, dtype=np.int8)
for _t, (_slots, *_rest) in enumerate(TEMPLATES):
    SLOTS[_t, : len(_slots)] = _slots
SIZE = (SLOTS >= 0).sum(axis=1)
SHARE = np.array([t[1] for t in TEMPLATES])
SHARE = SHARE / SHARE.sum()
YEARS = np.array([t[2] for t in TEMPLATES], dtype=float)
HEAD_MALE = np.array([t[3] for t in TEMPLATES])
# The two slots that can hold twins (first two children, else first two grandchildren), or -1.
TWIN_SLOTS = np.full((len(TEMPLATES), 2), -1, dtype=np.int8)
for _t, (_slots, *_rest) in enumerate(TEMPLATES):
    for _role in (C, G):
        _where = [i for i, r in enumerate(_slots) if r == _role]
        if len(_where) >= 2 and TWIN_SLOTS[_t, 0] < 0:
            TWIN_SLOTS[_t] = _where[:2]

# Error rates, conditional on the error being possible for the record (a lowercase x needs an X,
# a lunar date an elderly person). NCMS rates are scaled by each clerk's carelessness.
RATES: dict[str, dict[str, float]] = {
    "police": {
        "name_homophone": 0.003, "name_lookalike": 0.002, "name_translit_variant": 0.02,
        "name_dot_variant": 0.02,
        "id_wrong_check": 0.001, "id_mistyped_digit": 0.001, "id_swapped_digits": 0.001,
        "date_digit_off": 0.002,
    },
    "ncms": {
        "name_cut4": 0.40, "name_translit_variant": 0.12,
        "name_surname_dropped": 0.10, "name_dot_variant": 0.25, "name_homophone": 0.035,
        "name_lookalike": 0.03, "name_traditional": 0.01, "name_space": 0.012,
        "name_dropped_char": 0.006, "name_doubled_char": 0.004, "name_swapped_given": 0.008,
        "id_blank": 0.02, "id_placeholder": 0.01, "id_15digit": 0.03, "id_wrong_check": 0.008,
        "id_mistyped_digit": 0.012, "id_swapped_digits": 0.007, "id_fullwidth": 0.005,
        "id_lowercase_x": 0.25, "id_spaces": 0.005, "id_excel_float": 0.008, "id_excel_000": 0.007,
        # a child's ID field carrying the father's or mother's number: a few per thousand NCMS
        # children (issue 16; it was 0.02, some 18 per thousand, more than rosters show)
        "id_parent_number": 0.006, "id_renumbered": 0.004,
        "date_jan1": 0.01, "date_year_month": 0.008, "date_day_month_swap": 0.008,
        "date_lunar": 0.15, "date_digit_off": 0.008,
        "gender_blank": 0.03, "gender_wrong": 0.003,
    },
    "urban": {
        "name_translit_variant": 0.05, "name_surname_dropped": 0.04, "name_dot_variant": 0.12,
        "name_homophone": 0.015, "name_lookalike": 0.01, "name_traditional": 0.005,
        "name_space": 0.005, "name_dropped_char": 0.003, "name_doubled_char": 0.002,
        "name_swapped_given": 0.003,
        "id_blank": 0.004, "id_placeholder": 0.002, "id_15digit": 0.004, "id_wrong_check": 0.003,
        "id_mistyped_digit": 0.007, "id_swapped_digits": 0.004, "id_fullwidth": 0.003,
        "id_lowercase_x": 0.12, "id_spaces": 0.003, "id_excel_float": 0.003, "id_excel_000": 0.003,
        "id_parent_number": 0.004, "id_renumbered": 0.002,
        "date_jan1": 0.003, "date_year_month": 0.001, "date_day_month_swap": 0.003,
        "date_lunar": 0.02, "date_digit_off": 0.005,
        "gender_blank": 0.01, "gender_wrong": 0.002,
    },
}
# Record selection rates (per eligible person) for the rosters and the duplicate enrolments.
ENROL = {
    "ncms_household": 0.96, "ncms_person": 0.97, "ncms_dead_listed": 0.2,
    "ncms_dead_unlisted": 0.95,
    "urban_child": 0.85, "urban_elderly": 0.8, "urban_adult": 0.45, "urban_dead": 0.03,
    "pupil_in_urban": 0.04, "worker_in_urban": 0.015, "migrant_rural_in_urban": 0.25,
    # a married daughter left in her parents' NCMS household and added to her husband's: raised
    # from 0.012 (issue 16: split households are what household linkage has to get right)
    "married_daughter_twice": 0.02, "ncms_entered_twice": 0.004, "police_double": 0.0025,
}

# Milk names (乳名, 小名): what the family calls a small child, and what the family tells the
# village clerk, so the NCMS record carries it while the registry keeps the formal name. A
# property of the child, not a keying error: P(a child of this age has one on the NCMS roster).
# Issue 16 measured that at 1M persons these infants, matched across unrelated households on a
# shared name and a near birthdate, are most of the false NCMS-NCMS pairs; roughly a third of the
# under-sevens in hand-filled rural rosters go by a milk name, school-age children rarely.
MILK = {
    "age_0_2": 0.34, "age_3_6": 0.28, "age_7_11": 0.04,
    "with_surname": 0.4,  # 王小宝 rather than 小宝
    "zipf_s": 1.1,  # the pool is concentrated: the first few names (小宝, 丫头) recur everywhere
}

# Children entered with neither an ID nor a full birthdate (the family knows the year; the child
# has no card and the clerk does not ask for the 户口簿): P per NCMS record, scaled by the
# clerk's carelessness. Issue 16: these are among the NCMS->registry links only the household can
# make. A few per cent of NCMS children, more of the youngest.
CHILD_NO_ID = {"age_0_6": 0.05, "age_7_14": 0.02}

# What an NCMS household pays on its receipt (收据): the town's 2012 rules, yuan per person and
# year (configs/demo.yaml holds the same numbers for the enrolment check). A reduction is taken
# off the personal contribution ("full": nothing to pay); late enrollees pay the personal
# contribution and the government's part, newborns the personal contribution, neither reduced.
CONTRIBUTIONS = {
    "personal": {"一档": 50.0, "二档": 120.0}, "government": 200.0,
    "reduction": {"五保": {"一档": "full", "二档": 60.0}, "三无": {"一档": "full", "二档": "full"},
                  "低保": {"一档": 40.0, "二档": 60.0}, "优抚": {"一档": 40.0, "二档": 60.0},
                  "重度残疾": {"一档": 40.0, "二档": 60.0}},
}
# Receipts: P(a household enrols late), and the errors a receipt is written with, per receipt
# and scaled by the clerk's carelessness (at most one each): the headcount off by one, an
# arithmetic slip, the other tier's amount, a subsidised member charged in full (per receipt
# with one), a late household charged as a regular one (per late receipt).
RECEIPTS = {
    "late_household": 0.02,
    "receipt_headcount_wrong": 0.015, "receipt_amount_slip": 0.012, "receipt_other_tier": 0.01,
    "receipt_reduction_missed": 0.12, "receipt_late_as_regular": 0.25,
}

# Family facts that make hard negatives (issue 16, item 3): a son given his father's name (P per
# household with a father and a son listed together, which is a third of households: 0.5-1% of
# all households).
FAMILY = {"son_named_after_father": 0.015,
          "father_on_parent_id": 0.6}  # whose ID a child's record carries: the father's mostly

# How the registry and the NCMS roster group the same family differently (rural households only;
# one event per household). Rates are per eligible household.
HOUSEHOLD = {
    # a married son (with his wife and children) set up his own 户 in the registry while NCMS
    # still lists them in his parents' household; the reverse share is the NCMS split
    "split_married_son": 0.15,
    # an unmarried adult son (24 or older) registered as a 户 of his own
    "split_adult_son": 0.05,
    "split_in_registry_share": 0.65,  # of splits, the registry's (else NCMS's: the reverse)
    # the head died and a successor (spouse, else the married son, else the eldest adult child)
    # is 户主 in one source; the other still lists the old head. Most of the time NCMS, renewed
    # every year, is the one updated
    "head_replaced": 0.6, "head_replaced_in_ncms_share": 0.65,
    # the head is alive, but NCMS lists another member (the wife who came to pay, the son who
    # took over) as 户主 and every relation relative to them
    "head_differs": 0.04,
    "head_differs_son_share": 0.4,  # where both could be: the married son rather than the spouse
}

# Geography at scale: residents per village and per urban community on average (a village's size
# varies around it by a lognormal factor), and how many villages (communities) a township (town or
# street) holds before the county opens another one, so places grow with the population instead
# of villages swelling. Rural villages in Tongliao hold a few hundred residents each; a township
# some 20 to 40 villages.
GEO = {"village_residents": 400, "village_size_sigma": 0.17, "villages_per_township": 40,
       "community_residents": 1500, "communities_per_unit": 30, "min_per_unit": 2}

# Han given names per (gender, era): the share of a name falls with its rank r (0 first) as
# 1 / (r + offset) ** s (names.HAN_GIVEN_COMMON first, then names made of names.HAN_GIVEN); a
# single-character name made of the k-th character ranks beside the two-character names whose
# ranks multiply to `single` * k. Calibrated to the national counts (张伟, 王伟 and 李娜 each about
# 2 in 10,000 persons; 伟 some 1.5-2 % of the men born 1970-1994, a bit more in the north) and
# to names growing more diverse with each generation (the young era's top name about 1 %).
GIVEN_NAMES = {
    ("M", "old"): {"s": 1.0, "offset": 10.0, "single": 1.2},
    ("M", "mid"): {"s": 1.0, "offset": 5.5, "single": 1.2},
    ("M", "young"): {"s": 0.9, "offset": 8.0, "single": 3.0},
    ("F", "old"): {"s": 1.0, "offset": 5.0, "single": 2.0},
    ("F", "mid"): {"s": 1.0, "offset": 5.5, "single": 1.2},
    ("F", "young"): {"s": 0.9, "offset": 8.0, "single": 3.0},
}
