"""The check verdict's warnings (DECEASED, ID_INVALID, ID_DAMAGED, ID_OTHER_PERSON,
ALREADY_ENROLLED) in both scopes, needs_review for an unreadable ID, and what a masked caller
can and cannot learn from the warnings (linkage/web/api_guard.py).

The small synthetic world and its run come from tests/web/conftest.py (web_run); the helpers
and the app with a token per scope (api, world) from tests/web/test_check_api.py and
conftest.py.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from stdnum.iso7064 import mod_11_2
from test_check_api import persons_with, police_record, police_row_of, post, valid_id

from linkage.online.check import INPUT_WARNINGS, VERDICT_MESSAGES, VERDICTS, WARNINGS
from matchers.resident_id import parse_id

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


REGISTRY_WARNINGS = set(WARNINGS) - INPUT_WARNINGS


def codes(answer: dict) -> list[str]:
    return [w["code"] for w in answer["warnings"]]


def warning(answer: dict, code: str) -> dict:
    return next(w for w in answer["warnings"] if w["code"] == code)


def both(api, record: dict) -> tuple[dict, dict]:
    """The check_full and the check answer for one record."""
    full, masked = (post(api, "/check", record, scope) for scope in ("check_full", "check"))
    assert full.status_code == masked.status_code == 200, (full.text, masked.text)
    return full.json(), masked.json()


def mistyped(idn: str) -> str:
    """The number with its 11th digit typed one higher (the check character no longer holds)."""
    typed = idn[:10] + str((int(idn[10]) + 1) % 10) + idn[11:]
    assert parse_id(typed)["id_status"] == "bad_check"
    return typed


def damaged(idn: str) -> str:
    """The number as Excel leaves it: its last three digits zeroed or, where that happens to
    keep a valid check character, in scientific notation."""
    zeroed = idn[:15] + "000"
    out = zeroed if parse_id(zeroed)["id_status"] == "excel_damaged" else f"{idn[0]}.{idn[1:6]}E+17"
    assert parse_id(out)["id_status"] == "excel_damaged"
    return out


def not_held(world, idn: str) -> str:
    """A valid number of the same region and birthdate that no registry record carries."""
    held = set(world["police"]["公民身份号码"])
    return next(n for n in (valid_id(idn[:6], idn[6:14], f"{k:03d}") for k in range(990, 0, -1))
                if n not in held)


def only_in_police(world, alive: bool = True) -> list:
    """Registry rows of persons with no insurance record, living or deceased."""
    rows = [police_row_of(world, p) for p in persons_with(world, {"police"}, {"ncms", "urban"})]
    return [r for r in rows if (r["人员状态"] != "死亡") == alive
            and parse_id(r["公民身份号码"])["id_status"] == "valid"
            and world["police"]["公民身份号码"].eq(r["公民身份号码"]).sum() == 1]


# --- each code, both scopes -------------------------------------------------------------------

def test_deceased_person_is_warned_in_both_scopes(api, world):
    row = only_in_police(world, alive=False)[0]
    full, masked = both(api, police_record(row, "ncms"))
    entity = world["entity"][("police", row.name)]
    for answer in (full, masked):
        assert (answer["verdict"], answer["entity_id"]) == ("known_person", entity)
        assert codes(answer) == ["DECEASED"]
        assert warning(answer, "DECEASED") == {"code": "DECEASED", "message": WARNINGS["DECEASED"],
                                               "detail": {"entity_id": entity}}
    # The living are not warned.
    alive = only_in_police(world)[0]
    assert [codes(a) for a in both(api, police_record(alive, "ncms"))] == [[], []]


def test_invalid_id_is_warned_and_needs_review_when_nothing_settles_it(api, world):
    row = only_in_police(world)[1]
    idn = row["公民身份号码"]
    wrong_date = valid_id(idn[:6], idn[6:10] + "1345", idn[14:17])
    wrong_region = valid_id("990000", idn[6:14], idn[14:17])
    for typed, status in ((mistyped(idn), "bad_check"), (wrong_date, "bad_date"),
                          (wrong_region, "bad_region")):
        assert parse_id(typed)["id_status"] == status
        # The desk's record without a birthdate: the registry cannot be searched by the number,
        # and the name alone does not show the person is new.
        record = {"source": "ncms", "name": row["姓名"], "id_number": typed}
        full = post(api, "/check", record, "check_full").json()
        masked = post(api, "/check", record, "check").json()  # a full number, so allowed
        for answer in (full, masked):
            assert answer["verdict"] == "needs_review", (status, answer["reason"])
            assert codes(answer) == ["ID_INVALID"]
            assert warning(answer, "ID_INVALID")["detail"] == {"id_status": status}
        assert status in full["reason"] and "身份证号" in warning(full, "ID_INVALID")["message"]
    # A full birthdate beside the name settles it: the person is found despite the typo.
    full, masked = both(api, {**police_record(row, "ncms"), "id_number": mistyped(idn)})
    for answer in (full, masked):
        assert answer["verdict"] == "known_person"
        assert answer["entity_id"] == world["entity"][("police", row.name)]
        assert codes(answer) == ["ID_INVALID"]
    # A fresh person with a full birthdate and a mistyped number stays new.
    fresh = {"source": "urban", "name": "欧阳雪梅", "birth_date": "2024-02-29",
             "id_number": mistyped(valid_id("150525", "20240229", "358"))}
    for answer in both(api, fresh):
        assert (answer["verdict"], codes(answer)) == ("new_person", ["ID_INVALID"])
    # Not an ID number at all (check_full only: the check scope needs a full one or a birthdate).
    dropped = idn[:9] + idn[10:]  # a digit left out
    answer = post(api, "/check", {"source": "ncms", "name": row["姓名"],
                                  "id_number": dropped}).json()
    assert (answer["verdict"], codes(answer)) == ("needs_review", ["ID_INVALID"])
    assert warning(answer, "ID_INVALID")["detail"] == {"id_status": "malformed"}


def test_excel_damaged_id_is_warned_in_both_scopes(api, world):
    row = only_in_police(world)[2]
    idn = row["公民身份号码"]
    scientific = f"{idn[0]}.{idn[1:6]}E+17"
    zeroed = idn[:15] + "000"
    for value in (scientific, zeroed):
        assert parse_id(value)["id_status"] == "excel_damaged"
        answer = post(api, "/check", {"source": "ncms", "name": row["姓名"],
                                      "id_number": value}).json()
        assert (answer["verdict"], codes(answer)) == ("needs_review", ["ID_DAMAGED"])
        assert answer["warnings"][0] == {"code": "ID_DAMAGED", "message": WARNINGS["ID_DAMAGED"],
                                         "detail": {"id_status": "excel_damaged"}}
    # The check scope takes a damaged number beside a birth month; it reads the value only.
    fresh = {"source": "urban", "name": "欧阳雪梅", "id_number": "1.50525E+17",
             "birth_date": "2024-02"}
    full, masked = both(api, fresh)
    for answer in (full, masked):
        assert (answer["verdict"], codes(answer)) == ("needs_review", ["ID_DAMAGED"])
    # With a full birthdate, no known person means a new one.
    for answer in both(api, {**fresh, "birth_date": "2024-02-29"}):
        assert (answer["verdict"], codes(answer)) == ("new_person", ["ID_DAMAGED"])


def test_id_of_another_registry_person_is_warned(api, world):
    row = only_in_police(world)[3]
    entity = world["entity"][("police", row.name)]
    holder = {"entity_id": entity, "source": "police", "record_id": row.name}
    other_name = {**police_record(row, "urban"), "name": "欧阳雪梅"}
    full, masked = both(api, other_name)
    assert warning(full, "ID_OTHER_PERSON") == {
        "code": "ID_OTHER_PERSON", "message": WARNINGS["ID_OTHER_PERSON"],
        "detail": {"holders": [{**holder, "differs": ["name"]}]}}
    # The check scope is told, but not whose number it is nor what differs.
    assert warning(masked, "ID_OTHER_PERSON") == {**warning(full, "ID_OTHER_PERSON"),
                                                  "detail": None}
    born = row["出生日期"]
    other_birth = {**police_record(row, "urban"),
                   "birth_date": f"{int(born[:4]) - 3}{born[4:]}"}
    full, masked = both(api, other_birth)
    assert warning(full, "ID_OTHER_PERSON")["detail"]["holders"] == \
        [{**holder, "differs": ["birth_date"]}]
    assert "ID_OTHER_PERSON" in codes(masked)
    # The person's own record, a space typed inside the name, or no birthdate: no warning.
    spaced = {**police_record(row, "urban"), "name": row["姓名"][0] + " " + row["姓名"][1:]}
    for record in (police_record(row, "urban"), spaced,
                   {**police_record(row, "urban"), "birth_date": None}):
        assert [codes(a) for a in both(api, record)] == [[], []]


def test_number_shared_by_two_registry_persons_is_warned(api, world):
    police = world["police"]
    ids = police["公民身份号码"]
    shared = police[ids.duplicated(keep=False)
                    & ids.map(lambda v: parse_id(v)["id_status"]).eq("valid")]
    groups = [g for _, g in shared.groupby("公民身份号码") if g["姓名"].nunique() == len(g)]
    assert groups, "the world has numbers copied onto another person's registry record"
    first, others = groups[0].iloc[0], groups[0].iloc[1:]
    record = police_record(first, "police")
    full, masked = both(api, record)
    holders = warning(full, "ID_OTHER_PERSON")["detail"]["holders"]
    assert {h["record_id"] for h in holders} == set(others["人员编号"])
    assert all("name" in h["differs"] for h in holders)
    assert "ID_OTHER_PERSON" in codes(masked)


def test_already_enrolled_says_where_in_both_scopes(api, world):
    person = persons_with(world, {"police", "ncms"}, {"urban"})[0]
    row = police_row_of(world, person)
    full, masked = both(api, police_record(row, "urban"))
    truth = world["truth"]
    enrolled = set(truth[(truth["person_id"] == person) & (truth["source"] == "ncms")]
                   ["record_id"])
    ncms = world["ncms"].set_index("参合编号")
    for answer in (full, masked):
        assert answer["verdict"] == "duplicate_enrolment"
        assert codes(answer) == ["ALREADY_ENROLLED"]
        w = warning(answer, "ALREADY_ENROLLED")
        assert {e["record_id"] for e in w["detail"]["enrolments"]} == enrolled
        assert {(e["source"], e["scheme"], e["scheme_name"]) for e in w["detail"]["enrolments"]} \
            == {("ncms", "NCMS", "新农合")}
        assert w["detail"]["village"] == row["嘎查村"] and w["detail"]["entity_id"] == \
            answer["entity_id"]
        assert w["message"].startswith("此人已参保：新农合（ncms 记录 ")
        assert row["嘎查村"] in w["message"]
    households = {e["household_id"] for e in warning(full, "ALREADY_ENROLLED")["detail"]
                  ["enrolments"]}
    assert households == {ncms.loc[r, "家庭编号"] for r in enrolled}
    assert {e["household_id"] for e in warning(masked, "ALREADY_ENROLLED")["detail"]
            ["enrolments"]} == {None}
    for h in households:
        assert h not in str(masked)


def test_every_verdict_comes_with_the_desks_chinese_message_in_both_scopes(api, world):
    """``message`` says the verdict to the desk in Chinese, by verdict alone (so the masked
    scope may carry it); ``reason`` stays the data team's English."""
    alive = only_in_police(world)[0]
    enrolled = police_row_of(world, persons_with(world, {"police", "ncms"}, {"urban"})[0])
    records = {
        "known_person": police_record(alive, "ncms"),
        "duplicate_enrolment": police_record(enrolled, "urban"),
        "needs_review": {"source": "ncms", "name": alive["姓名"],
                         "id_number": mistyped(alive["公民身份号码"])},
        "new_person": {"source": "urban", "name": "欧阳雪梅", "birth_date": "2024-02-29",
                       "id_number": valid_id("150525", "20240229", "358")},
    }
    assert set(records) == set(VERDICTS)
    for verdict, record in records.items():
        full, masked = both(api, record)
        for answer in (full, masked):
            assert answer["verdict"] == verdict, (verdict, answer["reason"])
            assert answer["message"] == VERDICT_MESSAGES[verdict]
            assert any("\u4e00" <= ch <= "\u9fff" for ch in answer["message"])
        assert full["reason"].isascii() or verdict == "duplicate_enrolment"
    assert len(set(VERDICT_MESSAGES.values())) == len(VERDICTS)


# --- what a masked caller can learn -----------------------------------------------------------

def test_masked_record_without_a_full_id_gets_no_registry_warning(api, world):
    """Name and birthdate (the check scope's other admissible record) are a desk without the
    card, or a prober: the registry's warnings need a full ID beside the name. The same
    records in check_full are warned, so the test shows the masking, not an absence."""
    dead = only_in_police(world, alive=False)[1]
    enrolled = police_row_of(world, persons_with(world, {"police", "ncms"}, {"urban"})[2])
    probes = []
    for row in (dead, enrolled):
        idn = row["公民身份号码"]
        base = {**police_record(row, "urban"), "id_number": None}
        probes.append(base)
        probes.append({**base, "id_number": damaged(idn)})
        probes.append({**base, "id_number": idn[:12]})  # part of the number
        # A full number that is not the person's: made up with a valid check character, or
        # the person's with a digit changed. The name and birthdate find the person; the
        # number does not show the card is in hand.
        probes.append({**base, "id_number": not_held(world, idn)})
        probes.append({**base, "id_number": mistyped(idn)})
    probes.append({**police_record(dead, "urban"), "name": "欧阳雪梅", "id_number": None})
    seen_in_full: set[str] = set()
    for probe in probes:
        full, masked = both(api, probe)
        seen_in_full |= set(codes(full))
        assert set(codes(masked)) <= INPUT_WARNINGS, (probe, codes(masked))
        assert masked["verdict"] == full["verdict"]
        if full["entity_id"] is not None and probe["id_number"]:
            assert {"DECEASED", "ALREADY_ENROLLED"} & set(codes(full)), probe
    assert seen_in_full >= {"DECEASED", "ALREADY_ENROLLED"}
    # The same persons with their own numbers: warned in the check scope too.
    assert codes(both(api, police_record(dead, "urban"))[1]) == ["DECEASED"]
    assert codes(both(api, police_record(enrolled, "urban"))[1]) == ["ALREADY_ENROLLED"]
    # Without a name the check scope is not answered at all.
    nameless = {**police_record(dead, "urban"), "name": None}
    answer = post(api, "/check", nameless, "check")
    assert answer.status_code == 422 and dead["公民身份号码"] not in answer.text
    assert codes(post(api, "/check", nameless, "check_full").json()) == ["DECEASED"]


def test_damaged_id_guess_does_not_change_the_masked_warnings(api, world):
    """An Excel-damaged number keeps 15 digits: if it were matched against registry numbers it
    would test a thousand numbers in one record. It is matched against none, in either scope."""
    row = only_in_police(world)[4]
    idn = row["公民身份号码"]
    base = {"source": "urban", "name": "欧阳雪梅", "birth_date": row["出生日期"][:7]}
    right = {**base, "id_number": damaged(idn)}  # the digits of a registry number
    wrong = {**base, "id_number": damaged(("15" if idn[:2] != "15" else "14") + idn[2:])}
    answers = [post(api, "/check", r, scope).json() for r in (right, wrong)
               for scope in ("check_full", "check")]
    assert [codes(a) for a in answers] == [["ID_DAMAGED"]] * 4


def _neighbours(idn: str) -> list[str]:
    """Numbers an ID prober tries around a real one: the other region digits, the other
    sequence digits (each with its check character) and the wrong check characters."""
    out = []
    for at in (5, 14, 15, 16):
        for d in "0123456789":
            body = idn[:at] + d + idn[at + 1:17]
            out.append(body + mod_11_2.calc_check_digit(body))
    out += [idn[:17] + c for c in "0123456789X" if c != idn[17]]
    return list(dict.fromkeys(out))


def test_id_warning_tests_one_number_per_record_within_the_limits(api, world):
    """A prober with a made-up name and guessed numbers learns, per record, whether that one
    number is a registry person's: never of a neighbour, and no more records than the token's
    limits (20 a request, 30 a minute) allow."""
    row = only_in_police(world)[5]
    idn = row["公民身份号码"]
    registry = set(world["police"]["公民身份号码"])
    guesses = _neighbours(idn)
    guesses.insert(25, guesses.pop(guesses.index(idn)))
    assert len(guesses) >= 31 and idn in guesses[:30]
    probes = [{"source": "urban", "name": "欧阳雪梅", "id_number": g} for g in guesses]
    assert post(api, "/check/batch", {"records": probes[:21]}, "check").status_code == 422
    answered: list[tuple[str, dict]] = []
    first = post(api, "/check/batch", {"records": probes[:20]}, "check")
    assert first.status_code == 200
    answered += zip(guesses[:20], first.json()["results"])
    assert post(api, "/check/batch", {"records": probes[20:40]}, "check").status_code == 429
    for guess, probe in zip(guesses[20:], probes[20:]):
        got = post(api, "/check", probe, "check")
        if got.status_code == 429:
            assert idn not in got.text
            break
        answered.append((guess, got.json()))
    assert len(answered) == 30  # the token's records a minute
    warned = {g for g, a in answered if "ID_OTHER_PERSON" in codes(a)}
    assert idn in warned
    assert warned == {g for g, _ in answered if g in registry}  # each tests itself only
    for _, a in answered:
        assert all(w["detail"] is None for w in a["warnings"] if w["code"] == "ID_OTHER_PERSON")


def test_warnings_are_the_same_for_a_batch_and_its_singles(api, world):
    dead = only_in_police(world, alive=False)[2]
    enrolled = police_row_of(world, persons_with(world, {"police", "ncms"}, {"urban"})[3])
    alive = only_in_police(world)[6]
    records = [police_record(dead, "ncms"), police_record(enrolled, "urban"),
               {**police_record(alive, "urban"), "name": "欧阳雪梅"},
               {"source": "ncms", "name": alive["姓名"], "id_number": mistyped(
                   alive["公民身份号码"])}]
    records += [police_record(world["police"].iloc[i], "urban") for i in range(0, 340, 20)]
    assert len(records) > 16  # the batch's vectorised standardisation path
    batch = post(api, "/check/batch", {"records": records}).json()["results"]
    singles = [post(api, "/check", r).json() for r in records]
    assert [b["warnings"] for b in batch] == [s["warnings"] for s in singles]
    assert {c for b in batch for c in codes(b)} >= REGISTRY_WARNINGS | {"ID_INVALID"}


def test_id_holders_found_without_an_id_blocking_rule(api, world):
    """A job whose blocking rules do not hold an ID number's records together still gets
    ID_OTHER_PERSON: the check builds its own exact index once."""
    from linkage.online.check import id_holders, standardise_queries

    master = api.app_.state.check_api.state.holder.get()
    row = only_in_police(world)[7]
    records = [{**police_record(row, "urban"), "name": "欧阳雪梅"},
               {**police_record(row, "urban"), "id_number": mistyped(row["公民身份号码"])}]
    queries = standardise_queries(master, records)
    with_rule = id_holders(master, queries)
    no_rule = dataclasses.replace(master, blocks=[b for b in master.blocks
                                                  if "id_prefix17" not in b.rule.keys])
    assert len(no_rule.blocks) == len(master.blocks) - 1
    without = id_holders(no_rule, queries)
    assert list(with_rule) == list(without) == [0]
    assert np.array_equal(with_rule[0], without[0])
    assert master.record_id[with_rule[0]].tolist() == [row.name]
