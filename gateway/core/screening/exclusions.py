"""Default exclusion contexts: everyday words that contain a counterfeit keyword in an innocent sense.

Chinese is written without spaces, so a listed slang term is found inside longer ordinary words: 高仿
inside 高仿真绿植 (a lifelike plant), 原单 inside 原单号 (the original order number), 复刻 inside 可重复
刻录 (rewritable). Each context here cancels an occurrence of a listed keyword that it contains and
spans in the text; it applies to every GOODS_KEYWORD entry whose term it contains, besides the
entry's own ``exclusions``. Contexts are compared after normalisation, so 原單號 and 1∶10000 are
covered by the forms written here.

Only words whose innocent sense is the usual one belong here, and only where the slang term is
rarely followed by the rest of the word: terms that are themselves slang (外贸原单, 顶级复刻, 超A,
最高版本, 1:1还原) are absent, and so are contexts that a slang term and the next word would form by
chance (高仿古 would swallow 高仿古驰, a fake Gucci). A reviewer adds an entry's own for the rest.
"""

from __future__ import annotations

from gateway.core.screening.automaton import contexts_of
from gateway.core.screening.model import Entry
from gateway.core.screening.normalize import normalize_text

DEFAULT_EXCLUSIONS: tuple[str, ...] = (
    # 高仿: 高仿真 is "high-fidelity" (lifelike models, artificial plants, training manikins). Not
    # 高仿古 or 高仿生: 高仿古驰 is a fake Gucci, and a context must never swallow a slang term followed
    # by a brand. (高仿真力时, a fake Zenith, is lost to this context; the brand floor still sees it.)
    "高仿真",
    # 原单: the original order number / receipt / employer / document / word.
    "原单号", "原单据", "原单位", "原单证", "原单词",
    # 复刻: 可重复刻录 (rewritable discs), 反复刻画 (depict again and again).
    "重复刻", "复刻录", "反复刻",
    # 一比一 / 1:1: map scales and ratios (normalisation writes 一比一万 as 1:10000 and 1:1.5 as 1:15,
    # which the digit boundary already keeps apart; they stay for lists written by hand), mixing
    # ratios (AB glue, dilution), a match score, and 一比一般 (compared with the ordinary).
    "一比一万", "一比一千", "一比一百", "1:10000", "1:1000", "1:100", "1:1.5",
    "1:1配比", "1:1混合", "1:1兑水", "1:1稀释", "1:1调配", "比分1:1", "一比一般",
    # A货: a shelf (A-frame), a container, a storage slot labelled A. Not A货物: "A货 物美价廉".
    "A货架", "A货柜", "A货位",
    # 纯原: pure flavour / juice / native / solid wood / raw material / colour / original work / pulp /
    # packaging / cotton.
    "纯原味", "纯原汁", "纯原生", "纯原木", "纯原料", "纯原色", "纯原创", "纯原浆", "纯原装", "纯原棉",
    # 高版本: software versions.
    "更高版本", "高版本系统", "高版本安卓", "高版本固件", "高版本软件",
    # 副厂 (made by another factory) inside 副厂长 (deputy factory director); 同厂 inside 不同厂 (a
    # different factory); 公司级 inside 公司级别 (company level).
    "副厂长", "不同厂", "公司级别",
    # 无标 (logo removed) inside no standard / untitled / no punctuation.
    "无标准", "无标题", "无标点",
)

# Brand aliases that are common nouns: 苹果 (Apple) is first of all a fruit, and fruit parcels are
# declared far below any phone's price floor.
DEFAULT_BRAND_EXCLUSIONS: tuple[str, ...] = (
    "富士苹果", "红富士", "冰糖心苹果", "烟台苹果", "阿克苏苹果", "红苹果", "青苹果", "新鲜苹果", "苹果水果",
    "水果苹果", "苹果醋", "苹果干", "苹果汁", "苹果酱", "苹果派", "苹果片", "苹果树", "苹果苗", "苹果园", "苹果梨",
)


def inert_exclusions(entry: Entry) -> list[str]:
    """The entry's own exclusions that contain none of its terms once normalised: they can never apply.

    For the layer that validates entries, so a reviewer learns that "绿植" cannot exclude 高仿 (an
    exclusion must contain the keyword, e.g. "高仿真绿植").
    """
    keys = [normalize_text(term) for term in (entry.value, *entry.aliases)]
    return [text for text in entry.exclusions
            if not any(key and contexts_of(key, [normalize_text(text)]) for key in keys)]
