"""What leaves the server of two values: character diffs, masked ID numbers, weight bars."""
import pytest

from linkage.web.display import (
    char_diff,
    describe_id_difference,
    mask_free_text,
    mask_id_pair,
    weight_bars,
)
from linkage.web.i18n import in_language


def _text(segments, changed=None):
    return "".join(s.text for s in segments if changed is None or s.changed == changed)


@pytest.mark.parametrize("a, b, changed_a, changed_b", [
    ("王丽", "王莉", "丽", "莉"),            # homophone: one character, not three bytes
    ("张伟", "张伟", "", ""),
    ("包·巴特尔", "包巴特尔", "·", ""),      # dropped middle dot
    ("乌力吉巴雅尔", "乌力吉巴", "雅尔", ""),  # cut by an old field length
    ("", "李娜", "", "李娜"),
])
def test_char_diff_marks_only_the_differing_characters(a, b, changed_a, changed_b):
    left, right = char_diff(a, b)
    assert _text(left) == a and _text(right) == b
    assert _text(left, True) == changed_a
    assert _text(right, True) == changed_b


def test_dates_are_compared_position_by_position():
    left, right = char_diff("1965-03-12", "1965-12-03", aligned=True)
    assert [s.text for s in left if s.changed] == ["03", "12"]
    assert [s.text for s in right if s.changed] == ["12", "03"]
    left, _ = char_diff("1965-03", "1965-03-12", aligned=True)  # lengths differ: a plain diff
    assert not any(s.changed for s in left)


def _shown(cells):
    return "".join(c.char for c in cells)


def _marked(cells):
    return [i for i, c in enumerate(cells) if c.differs]


def test_an_id_number_is_masked_but_its_differing_positions_are_marked():
    a, b = "150521196503120016", "150521196503210016"
    left, right = mask_id_pair(a, b)
    assert _shown(left) == "15****************"  # the province only: see test_review_hardening
    assert _shown(right) == "15****************"
    assert _marked(left) == _marked(right) == [12, 13]
    assert a not in _shown(left) + _shown(right)
    assert describe_id_difference(a, b) == "相邻两位颠倒（第 13-14 位）"  # Chinese unless asked
    with in_language("en"):
        assert describe_id_difference(a, b) == "two adjacent characters swapped (positions 13-14)"


@pytest.mark.parametrize("a, b, phrase", [
    ("150521196503120016", "150521196503120016", "identical"),
    ("150521196503120016", "150521196503120017", "one character differs (position 18)"),
    ("150521196503120016", "150521196503", "different lengths (18 and 12 characters)"),
    ("150521196503120016", "", "one side has no usable number"),
    ("150521196503120016", "250521196503120017", "2 characters differ"),
])
def test_id_difference_is_described_without_naming_a_digit(a, b, phrase):
    with in_language("en"):
        assert describe_id_difference(a, b) == phrase


def test_damaged_and_placeholder_ids_keep_their_non_digits_only():
    left, right = mask_id_pair("1.50521E+17", "无")
    assert _shown(left) == "*.*****E+**"
    assert _shown(right) == "无"
    short, _ = mask_id_pair("15052119650312", "15052119650312")  # too short to show any digit
    assert set(_shown(short)) == {"*"}


def test_id_numbers_inside_free_text_are_hidden():
    assert mask_free_text("户主 150521196503120016 电话") == "户主 ****************** 电话"
    assert mask_free_text("旧号 152301540821360") == "旧号 ***************"
    assert mask_free_text("收据 10000578") == "收据 10000578"


def test_weight_bars_share_one_scale_around_the_centre():
    bars = {b.name: b for b in weight_bars({
        "name": {"level": "exact", "weight": 10.0}, "id_number": {"level": "different",
                                                                 "weight": -5.0},
        "household": 0.0, "prior": -13.0})}
    assert bars["name"].x == 100 and bars["name"].width == pytest.approx(10 / 13 * 98)
    assert bars["id_number"].x + bars["id_number"].width == pytest.approx(100)
    assert bars["prior"].width == pytest.approx(98)
    assert bars["household"].width == 0 and bars["name"].level == "exact"
