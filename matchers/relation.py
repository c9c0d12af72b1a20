"""Relation to the household head reduced to a few roles the engine uses as household context.

Rosters write the relation as words (户主, 妻, 长子, 孙女 ...) or as GB/T 4761-2008 codes (two
digits: 01 本人, 02 户主, 10-12 spouse, 20-29 sons, 30-39 daughters, 40-49 grandchildren, 50-59
parents, 60-69 grandparents, 70-79 siblings, 80-99 others; one digit: 0 head, 1 spouse, 2 son,
3 daughter, 4 grandchild, 5 parent, 6 grandparent, 7 sibling, 8 other).

Choices: children-in-law (儿媳, 女婿; codes 28, 38) and the in-laws among grandchildren and
siblings (45, 46, 72, 74, 76, 78) are 'other', because a married daughter appears as 女 in her
parents' household and as 妻 or 儿媳 in her husband's, and the roles should say which is which;
parents-in-law (公公, 婆婆, 岳父, 岳母) are 'parent', as GB/T 4761 files them. Grandparents and
great-grandchildren follow their code ranges ('other', 'grandchild'). A text code of one digit
reads as the one-digit code; a number (Excel drops the leading zero of 01) as the two-digit code.
"""
from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pandas as pd

from matchers.base import per_distinct

ROLES = ("head", "spouse", "child", "grandchild", "parent", "sibling", "other")

_WORDS = {
    "head": "户主 本人 户主本人 本身 自己 自身 户长 head self",
    "spouse": "配偶 妻 夫 妻子 丈夫 爱人 老婆 老伴 媳妇 夫妻 之妻 之夫 spouse wife husband",
    "child": "子 儿 儿子 女 女儿 闺女 子女 儿女 独生子 独生女 养子 养女 继子 继女 "
             "长子 次子 长女 次女 幼子 幼女 小儿子 小女儿 大儿子 二儿子 三儿子 "
             "大女儿 二女儿 三女儿 son daughter child",
    "grandchild": "孙 孙子 孙女 外孙 外孙子 外孙女 长孙 次孙 长孙女 次孙女 曾孙 曾孙子 曾孙女 "
                  "外曾孙 外曾孙女 grandson granddaughter grandchild",
    "parent": "父 母 父亲 母亲 父母 爸爸 妈妈 爸 妈 公公 婆婆 岳父 岳母 继父 继母 养父 养母 "
              "father mother parent",
    "sibling": "兄 弟 姐 妹 兄弟 姐妹 兄妹 姐弟 哥 哥哥 弟弟 姐姐 妹妹 兄长 胞兄 胞弟 胞姐 胞妹 "
               "兄弟姐妹 brother sister sibling",
    "other": "其他 其它 其他亲属 非亲属 儿媳 儿媳妇 女婿 孙媳 孙媳妇 孙女婿 嫂 嫂子 弟媳 弟妹 姐夫 "
             "妹夫 祖父 祖母 外祖父 外祖母 爷爷 奶奶 姥爷 姥姥 外公 外婆 侄子 侄女 外甥 外甥女 "
             "伯父 伯母 叔父 叔叔 婶母 舅父 舅舅 舅母 姨父 姨母 姑父 姑母 保姆 other",
}
_TERMS = {word: role for role, words in _WORDS.items() for word in words.split()}
_ORDINAL_CHILD = re.compile(r"^[长次大二三四五六七八九十老小幼]{1,2}[子女]$")
_ORDINAL_GRANDCHILD = re.compile(r"^(?:外)?(?:曾)?[长次大二三四五六七八九十]?孙[子女]?$")
_PREFIX = re.compile(r"^(?:与户主关系|与户主的关系|关系)?[:：]?(?:户主|本人)?(?:之|的)?")
_KIN_CHARS = set("侄甥叔伯姑舅姨嫂媳婿表堂亲祖曾")
_IN_LAW_CODES = {28, 38, 45, 46, 72, 74, 76, 78}
_ONE_DIGIT = (
    "head", "spouse", "child", "child", "grandchild", "parent", "other", "sibling", "other"
)


def _from_code(code: int) -> str | None:
    """The role of a two-digit GB/T 4761 code."""
    if code in (1, 2):
        return "head"
    if code in _IN_LAW_CODES:
        return "other"
    decade = code // 10
    roles = {1: "spouse", 2: "child", 3: "child", 4: "grandchild", 5: "parent", 6: "other",
             7: "sibling", 8: "other", 9: "other"}
    return roles.get(decade) if 10 <= code <= 99 else None


def parse_relation(value: object) -> str | None:
    """One of :data:`ROLES`, or None when blank or unrecognisable; never raises."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return _from_code(int(value)) if int(value) != 0 else "head"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            return None
        return parse_relation(int(value))
    if not isinstance(value, str):
        return None
    text = "".join(unicodedata.normalize("NFKC", value).split()).lower()
    if text.endswith(".0") and text[:-2].isdigit():
        return parse_relation(int(text[:-2]))
    if text.isdigit():
        if len(text) == 1:
            return _ONE_DIGIT[int(text)] if text != "9" else None
        return _from_code(int(text)) if len(text) == 2 else None
    return _from_words(text)


def _from_words(text: str) -> str | None:
    if text in _TERMS:
        return _TERMS[text]
    bare = _PREFIX.sub("", text)  # 户主之妻, 户主的儿子, 与户主关系:子
    if bare != text and bare:
        return _from_words(bare)
    if _ORDINAL_CHILD.match(text):
        return "child"
    if _ORDINAL_GRANDCHILD.match(text):
        return "grandchild"
    if any(c in _KIN_CHARS for c in text):
        return "other"
    return None


def standardise(series: pd.Series) -> pd.DataFrame:
    """Column ``relation_std`` per row, once per distinct value."""
    return pd.DataFrame({"relation_std": per_distinct(series, parse_relation)}, index=series.index)
