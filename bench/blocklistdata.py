"""Plausible counterfeit-blocklist entries: names, valid numbers, keywords, brands, fingerprints, addresses.

Everything is drawn from a seeded generator, so a seed is repeatable, and nothing names a real person. The
vocabularies mirror tests/fixtures/screening/synthetic.py (which bench must not import) and widen it, because
a million entries need far more distinct names than the tests do.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from gateway.core.identity.masking import mask_document
from gateway.core.identity.regions import region_name, region_periods
from gateway.core.identity.resident_id import mod11_2_check
from gateway.core.screening.model import DEFAULT_NAME_THRESHOLD
from gateway.core.screening.nameforms import name_score, parse_name
from gateway.core.screening.normalize import normalize_text
from gateway.core.screening.phonetic import blocking_fold, char_readings

# Listed counterfeit hubs and ordinary districts; every one is in the division table (checked by tests/bench).
REGION_CODES = (
    "440111", "440104", "440304", "440303", "440307", "440306", "350304", "350302", "350303", "330782", "350582",
    "350581", "330302", "330381", "310101", "310106", "110105", "110108", "110106", "330102", "330110", "510104",
    "510105", "510107", "500103", "420103", "120101", "320104", "320508", "320581", "610113", "430104", "410105",
    "370102", "370202", "350203", "350102", "530102", "210102", "210202", "230102", "450103", "340104", "360102",
    "130102", "140105", "650102", "653101", "540102", "460106", "460204", "520102", "620102", "150102", "640104",
    "630102", "220104", "110101", "310104", "310115", "440305", "440106", "330106", "320106", "420106",
)
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
            "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔")
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "令狐", "慕容", "皇甫", "尉迟", "公孙")
# The common given-name characters first; chinese_name draws those three times as often as the rest.
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅兵飞鹏辉斌宇浩凯健俊帆帅旭宁龙林欣怡佳琪雪晨阳"
         "思彤雨婷诗涵梓萱子轩博文天佑嘉晓东海波春燕金凤淑珍永福德胜家豪振小慧玲萍颖琳璐瑶倩蕾薇悦露蓉雯洁晶莹荣瑞祥安"
         "鑫毅峰岩松柏森彬翔航昊睿哲诚铭锋坤成顺利发友贵寿才亮光辰朝丹蕊卫新立庆一二三之乐书云亚仁伦佩依侠保信元兆先克"
         "兴冬冰凡力功勤化卿厚双可同名君吉和咏品善园坚均城基培士声复夏大奇奕妍妙姗姝娇婉婧媛学宏宗宜宝实宪宵富寒尧展山"
         "岚川巧希常年幸广康廷彦彩影征微心忠念怀恒恩惠意承捷敬方旺昆昌易星昭晋晖景智曼月朗木杉枫柔柳树桐桥梦梁楠欢正武"
         "毓民江池沛河泉法泽洪润清渊湘源溪滨漫潇澄灵炎炜烨然煜熙爱玮珊琦琴瑜璇生田甜盈真石硕祖秋程穗章童竹笑筠素紫纯绍"
         "维绮美群羽翠耀聪育舒艺芝芬芸花芷苗若茂茜茹莉莎莲菁菲萌蔚虹融西言谦贞贤远逸道达邦郁采锦镇长闻雁雄雅霖青韵馨骏"
         "高鸣鸿黎")
_GIVEN_POOL = GIVEN[:150] * 3 + GIVEN[150:]
# Transliterated Uyghur, Tibetan and other names, written with a middle dot between the parts.
DOTTED_PARTS = ("阿不都", "买买提", "艾力", "古丽", "热依拉", "努尔", "帕提古丽", "阿依", "吐尔逊", "艾买提", "依明",
                "托合提", "卡德尔", "沙吾提", "扎西", "次仁", "多吉", "卓玛", "格桑", "巴特尔", "其木格", "阿拉坦")
LATIN_FIRST = ("james", "mary", "robert", "patricia", "michael", "jennifer", "william", "linda", "david", "elizabeth",
               "richard", "barbara", "joseph", "susan", "thomas", "jessica", "charles", "sarah", "christopher", "karen",
               "daniel", "nancy", "matthew", "lisa", "anthony", "betty", "mark", "margaret", "donald", "sandra",
               "steven", "ashley", "paul", "kimberly", "andrew", "emily", "joshua", "donna", "kenneth", "michelle",
               "kevin", "dorothy", "brian", "carol", "george", "amanda", "timothy", "melissa", "ronald", "deborah",
               "olga", "dmitri", "hiroshi", "yuki", "ahmed", "fatima", "mohammed", "aisha", "omar", "leila", "carlos",
               "maria", "jose", "ana", "luis", "sofia", "pedro", "lucia", "ivan", "natalia", "sergei", "elena",
               "pierre", "claire", "hans", "greta", "marco", "giulia", "kenji", "akiko", "minh", "linh", "raj",
               "priya", "arjun", "ananya", "kwame", "amara", "tomasz", "agnieszka", "lars", "ingrid", "emre", "elif")
LATIN_LAST = ("smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
              "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore", "jackson", "martin",
              "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez", "lewis", "robinson",
              "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill", "flores", "green",
              "adams", "nelson", "baker", "hall", "rivera", "campbell", "mitchell", "carter", "roberts", "ivanov",
              "petrov", "tanaka", "sato", "suzuki", "watanabe", "kim", "park", "choi", "tran", "pham", "singh",
              "sharma", "patel", "khan", "hassan", "ali", "rahman", "silva", "santos", "oliveira", "costa", "rossi",
              "russo", "ferrari", "muller", "schmidt", "schneider", "fischer", "weber", "dubois", "moreau", "laurent",
              "kowalski", "nowak", "johansson", "andersson", "yilmaz", "kaya", "mensah", "okafor", "novak", "horvat")
CITIES = (*"""深圳市 广州市 东莞市 义乌市 莆田市 晋江市 石狮市 温州市 上海 北京 杭州市 苏州市 常熟市 佛山市 中山市
    汕头市 揭阳市 泉州市 厦门市 福州市 宁波市 金华市 台州市 成都市 重庆 武汉市 长沙市 郑州市 临沂市 青岛市 天津 南京市
    合肥市 南昌市""".split(), "")
TRADE_CHARS = "华强鑫盛达丰源恒泰隆兴瑞祥嘉信诚宏伟天宇金银富贵昌永安利通达顺发新远航博雅尚品优佳美汇聚星辰海"
INDUSTRIES = ("贸易", "电子商务", "服饰", "鞋业", "皮具", "箱包", "钟表", "化妆品", "科技", "进出口", "商贸", "供应链",
              "电子", "眼镜", "饰品", "运动用品", "日用品", "网络科技", "国际物流", "电子科技")
LEGAL_SUFFIXES = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司", "商行", "经营部")
LATIN_ORG_WORDS = ("golden", "star", "dragon", "pacific", "global", "united", "royal", "bright", "silver", "ocean",
                   "grand", "eastern", "new", "great", "harvest", "lucky", "rising", "summit", "prime", "crown",
                   "jade", "phoenix", "sunrise", "victory", "alpha", "orient", "century", "fortune", "noble", "unity",
                   "apex", "zenith", "horizon", "liberty", "mega", "nova", "peak", "regal", "sino", "trans")
LATIN_ORG_KINDS = ("trading", "import export", "international", "logistics", "fashion", "leather goods", "watches",
                   "electronics", "cosmetics", "apparel", "sourcing", "supply chain", "commerce", "enterprise")
LATIN_ORG_SUFFIXES = ("co., ltd.", "limited", "ltd", "llc", "inc.", "company limited", "gmbh", "corporation")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156",
                   "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "185", "186", "187", "188",
                   "189", "191", "198", "199")
# (area code, digits after it): landlines in the big cities.
LANDLINES = (("10", 8), ("21", 8), ("20", 8), ("755", 8), ("571", 8), ("579", 8), ("595", 8), ("769", 8), ("512", 8))
COUNTERFEIT_MARKERS = (*"""高仿 A货 超A 一比一 1:1 复刻 原单 尾单 仿品 精仿 顶级复刻 纯原 原厂皮 专柜同款 外贸原单
    莆田货 高版本 正品级 同厂 代工厂流出 顶级版 公司级 私模 副厂 无标 撕标 1to1 ua版 原版开模""".split(),
                       "replica", "super copy", "mirror quality", "aaa grade")
PRODUCTS = ("包", "手袋", "手提包", "钱包", "手表", "腕表", "鞋", "球鞋", "运动鞋", "板鞋", "皮带", "眼镜", "墨镜",
            "围巾", "香水", "口红", "耳机", "充电器", "手机壳", "项链", "手链", "戒指", "卫衣", "羽绒服", "T恤",
            "外套", "帽子", "丝巾", "背包", "行李箱", "化妆品", "面霜", "精华液", "打火机", "钢笔", "袖扣", "胸针")
# Real brands (name, Chinese name, aliases, lowest genuine unit price in fen), then made-up ones to 2,000.
REAL_BRANDS = (
    ("Louis Vuitton", "路易威登", ("LV",), 300_000), ("Gucci", "古驰", ("GG",), 250_000),
    ("Chanel", "香奈儿", ("CC",), 350_000), ("Hermès", "爱马仕", ("Hermes",), 800_000),
    ("Prada", "普拉达", (), 200_000), ("Dior", "迪奥", ("Christian Dior",), 200_000),
    ("Rolex", "劳力士", (), 4_000_000), ("Omega", "欧米茄", (), 2_500_000), ("Cartier", "卡地亚", (), 1_500_000),
    ("Burberry", "博柏利", ("巴宝莉",), 150_000), ("Balenciaga", "巴黎世家", (), 250_000),
    ("Nike", "耐克", (), 19_900), ("Adidas", "阿迪达斯", (), 19_900), ("Puma", "彪马", (), 15_900),
    ("New Balance", "新百伦", ("NB",), 39_900), ("Apple", "苹果", ("iPhone", "AirPods"), 99_900),
    ("Beats", "魔音", (), 99_900), ("Ray-Ban", "雷朋", ("RayBan",), 90_000), ("Tiffany", "蒂芙尼", (), 150_000),
    ("Bulgari", "宝格丽", ("BVLGARI",), 300_000), ("Moncler", "盟可睐", (), 600_000),
    ("Canada Goose", "加拿大鹅", (), 500_000), ("Supreme", "", (), 60_000), ("Off-White", "", (), 150_000),
    ("Montblanc", "万宝龙", (), 250_000), ("Zippo", "之宝", (), 20_000), ("Estée Lauder", "雅诗兰黛", (), 30_000),
    ("Lancôme", "兰蔻", ("Lancome",), 30_000), ("SK-II", "", ("SKII",), 50_000), ("La Mer", "海蓝之谜", (), 150_000),
    ("Yves Saint Laurent", "圣罗兰", ("YSL",), 30_000), ("Givenchy", "纪梵希", (), 200_000),
    ("Fendi", "芬迪", (), 250_000), ("Versace", "范思哲", (), 150_000), ("Armani", "阿玛尼", (), 100_000),
    ("Coach", "蔻驰", (), 150_000), ("Michael Kors", "迈克高仕", ("MK",), 100_000),
    ("Patek Philippe", "百达翡丽", (), 15_000_000), ("Audemars Piguet", "爱彼", ("AP",), 15_000_000),
    ("Longines", "浪琴", (), 1_000_000), ("Tissot", "天梭", (), 250_000), ("Swarovski", "施华洛世奇", (), 50_000),
    ("Pandora", "潘多拉", (), 30_000), ("Air Jordan", "乔丹", ("AJ",), 99_900), ("Converse", "匡威", (), 29_900),
    ("Vans", "范斯", (), 39_900), ("The North Face", "北面", ("TNF",), 80_000), ("Dyson", "戴森", (), 200_000),
)
_BRAND_SYLLABLES = ("vel", "mor", "cas", "tel", "lin", "ar", "no", "vi", "la", "ren", "zo", "bel", "ti", "qua", "ro",
                    "sa", "mi", "da", "fer", "gio", "lu", "ca", "ve", "dor", "an", "sel", "mar", "ni", "ko", "ra")
_BRAND_HAN = "维尔莫拉卡斯蒂兰诺菲雅琳奥丽德娜赛特伦芙珀缇薇克罗索米达费乔露塞玛妮柯瑟"
STREETS = ("中山路", "人民路", "解放路", "建设路", "和平街", "新华路", "长江路", "滨江大道", "科技园路", "学府路",
           "白云大道", "三元里大道", "华强北路", "福民路", "荔园路", "工人东路", "稠州北路", "宾王路", "鞋都大道",
           "环城南路", "站前路", "商贸城路", "工业大道", "振兴路", "花园街", "解放北路")
MARKETS = ("国际商贸城", "服装批发市场", "皮具城", "电子市场", "鞋业城", "小商品市场", "钟表城", "眼镜城")
AGENCIES = ("国家市场监督管理总局", "海关总署缉私局", "公安部经济犯罪侦查局", "广东省市场监督管理局", "深圳海关",
            "义乌市市场监督管理局", "莆田市公安局", "品牌权利人投诉", "国家知识产权局", "上海市市场监督管理局")
LEGAL_BASES = ("《商标法》第五十七条", "《产品质量法》第五条", "《刑法》第二百一十三条", "《海关法》第四十四条",
               "《知识产权海关保护条例》", "《反不正当竞争法》第六条")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714: the organisation code inside a USCC


def region_first_year(code: str) -> int:
    """The first year a division code was in force (1950 when the table gives no start)."""
    starts = [p.start for p in region_periods(code)]
    return min((s for s in starts if s is not None), default=1950) if None not in starts else 1950


_FIRST_YEAR = {code: region_first_year(code) for code in REGION_CODES}


def district_of(code: str) -> str:
    """The division's own name (东城区) from its full name (北京市东城区)."""
    full = region_name(code) or ""
    for cut in ("自治区", "省", "市", "地区"):
        head, sep, tail = full.rpartition(cut)
        if sep and tail:
            return tail
    return full


_DISTRICTS = {code: district_of(code) for code in REGION_CODES}


# ---- names -------------------------------------------------------------------------------------------


def chinese_name(rng: random.Random) -> str:
    """A Chinese name: mostly a surname and two given characters, some one; a few compound surnames."""
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.01 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(_GIVEN_POOL) for _ in range(1 if rng.random() < 0.12 else 2))


def dotted_name(rng: random.Random) -> str:
    """A transliterated name in two or three parts joined by a middle dot."""
    return "·".join(rng.sample(DOTTED_PARTS, rng.choice((2, 2, 3))))


def latin_name(rng: random.Random) -> str:
    """A Latin name: "First Last", "First M. Last", "First Middle Last", or listed as "LAST, First"."""
    first, last = rng.choice(LATIN_FIRST).title(), rng.choice(LATIN_LAST).title()
    shape = rng.random()
    if shape < 0.35:
        middle = ""
    elif shape < 0.7:
        middle = rng.choice("ABCDEFGHJKLMNPRSTW") + "."
    else:
        middle = rng.choice(LATIN_FIRST).title()
    if rng.random() < 0.15:  # sanctions-style listing
        return f"{last.upper()}, {first}" + (f" {middle}" if middle else "")
    return " ".join(p for p in (first, middle, last) if p)


def chinese_organisation(rng: random.Random) -> str:
    """E.g. 深圳市华强鑫贸易有限公司."""
    trade = "".join(rng.sample(TRADE_CHARS, rng.choice((2, 2, 3))))
    return rng.choice(CITIES) + trade + rng.choice(INDUSTRIES) + rng.choice(LEGAL_SUFFIXES)


def latin_organisation(rng: random.Random) -> str:
    """E.g. Golden Phoenix Trading Co., Ltd."""
    words = " ".join(w.title() for w in rng.sample(LATIN_ORG_WORDS, rng.choice((1, 2, 2))))
    return f"{words} {rng.choice(LATIN_ORG_KINDS).title()} {rng.choice(LATIN_ORG_SUFFIXES).title()}"


# ---- numbers -----------------------------------------------------------------------------------------


def resident_id(rng: random.Random) -> str:
    """A valid 18-character resident ID: a division in force in the birth year, a date, a sequence, the check."""
    region = rng.choice(REGION_CODES)
    first = max(1950, _FIRST_YEAR[region])
    year = rng.randint(first, max(first + 2, 2006))
    body = f"{region}{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(1, 999):03d}"
    return body + mod11_2_check(body)


def phone(rng: random.Random) -> tuple[str, str]:
    """(E.164, masked) of a mainland mobile (nine in ten) or a big-city landline; masked as mask_phone does."""
    if rng.random() < 0.9:
        national = rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"
        return "+86" + national, f"{national[:3]}****{national[-4:]}"
    area, digits = rng.choice(LANDLINES)
    subscriber = str(rng.randint(2, 7)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
    return f"+86{area}{subscriber}", f"0{area}-****{subscriber[-4:]}"


def organisation_code(rng: random.Random) -> str:
    """A valid unified social credit code: 91 (company), a division, a GB 11714 code with its check, the check."""
    org = "".join(rng.choice(_USCC_ALPHABET) for _ in range(8))
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(org, _ORG_WEIGHTS, strict=True))
    org_check = (11 - total % 11) % 11
    org += "X" if org_check == 10 else str(org_check)
    body = rng.choice(("91", "91", "91", "92", "93", "52")) + rng.choice(REGION_CODES) + org
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total) % 31]


def document_entry(rng: random.Random) -> tuple[str, str]:
    """(canonical number, masked) of a listed resident ID."""
    number = resident_id(rng)
    return number, mask_document(number)


def organisation_entry(rng: random.Random) -> tuple[str, str]:
    """(canonical code, masked) of a listed organisation."""
    code = organisation_code(rng)
    return code, mask_document(code)


# ---- goods -------------------------------------------------------------------------------------------


def keywords(rng: random.Random, n: int) -> list[str]:
    """n listed keywords distinct once normalised (一比一 is 1:1): the bare markers, then markers with products and
    brands."""
    markers: dict[str, str] = {}
    for marker in COUNTERFEIT_MARKERS:
        markers.setdefault(normalize_text(marker), marker)
    out = list(markers.values())[:n]
    brand_words = [b[1] or b[0] for b in REAL_BRANDS]
    shapes: tuple[Callable[[], str], ...] = (
        lambda: rng.choice(COUNTERFEIT_MARKERS) + rng.choice(PRODUCTS),
        lambda: rng.choice(brand_words) + rng.choice(COUNTERFEIT_MARKERS),
        lambda: rng.choice(COUNTERFEIT_MARKERS) + rng.choice(brand_words) + rng.choice(PRODUCTS),
        lambda: rng.choice(brand_words) + rng.choice(PRODUCTS) + rng.choice(COUNTERFEIT_MARKERS),
    )
    seen = {normalize_text(k) for k in out}
    return out + list(_distinct(lambda: rng.choice(shapes)(), n - len(out), seen=seen, key=normalize_text))


def brand(rng: random.Random, k: int) -> tuple[str, tuple[str, ...], int]:
    """The k-th brand: (name, aliases, price floor in fen); real ones first, then made-up ones."""
    if k < len(REAL_BRANDS):
        name, han, real_aliases, real_floor = REAL_BRANDS[k]
        return name, tuple(a for a in (han, *real_aliases) if a), real_floor
    latin = "".join(rng.choice(_BRAND_SYLLABLES) for _ in range(rng.choice((2, 3, 3)))).title()
    han = "".join(rng.choice(_BRAND_HAN) for _ in range(rng.choice((2, 3, 3, 4))))
    aliases: tuple[str, ...] = (han, latin[:3].upper()) if rng.random() < 0.1 else (han,)
    floor = rng.choice((9_900, 19_900, 49_900, 99_900, 199_900, 499_900, 1_000_000))
    return latin, aliases, floor


def fingerprint(rng: random.Random) -> int:
    """A 64-bit DCT hash as perceptual_hash makes them: its top (DC) bit is always 0."""
    return rng.getrandbits(63)


def address(rng: random.Random) -> tuple[str, str]:
    """(region code, address text) in a known division: a street address, a market stall or a village."""
    code = rng.choice(REGION_CODES)
    district, shape = _DISTRICTS[code], rng.random()
    if shape < 0.6:
        text = (f"{district}{rng.choice(STREETS)}{rng.randint(1, 999)}号"
                f"{rng.randint(1, 30)}栋{rng.randint(101, 2805)}室")
    elif shape < 0.85:
        text = (f"{rng.choice(STREETS)}{rng.choice(MARKETS)}{rng.randint(1, 9)}区"
                f"{rng.randint(1, 5)}楼{rng.randint(1, 3999)}号铺")
    else:
        village = rng.choice(TRADE_CHARS) + rng.choice(TRADE_CHARS)
        text = f"{district}{village}村{rng.randint(1, 20)}组{rng.randint(1, 300)}号"
    return code, text


def _distinct(draw: Callable[[], str], n: int, *, seen: set[str], key: Callable[[str], str] = str,
              attempts: int = 200) -> Iterator[str]:
    """n values of draw() whose keys are new (seen is updated); gives up loudly when the space is exhausted."""
    made = 0
    while made < n:
        for _ in range(attempts):
            value = draw()
            k = key(value)
            if k not in seen:
                seen.add(k)
                made += 1
                yield value
                break
        else:
            raise RuntimeError(f"could not draw a new value in {attempts} attempts after {made} (space exhausted)")


class Reserved:
    """Values the seed must not list: the bench's own senders and recipients, so their parcels stay ACCEPTED.

    A listed name clashes with a reserved one when the name index would score the pair near the threshold
    (homophones, other readings of a surname, -ng/-n slips); numbers are compared in canonical form.
    """

    def __init__(self, names: frozenset[str], numbers: frozenset[str], margin: float = 0.03) -> None:
        self.names, self.numbers = names, numbers
        self._bar = DEFAULT_NAME_THRESHOLD - margin
        self._forms = [f for f in (parse_name(n) for n in names) if f is not None]
        # A pair scoring near the threshold ends in the same syllable (folded) under some reading of its last
        # character: a cheap test that leaves the full score to a few candidates.
        self._tails = frozenset(t for f in self._forms for t in _tails(f.compact))

    def clashes(self, name: str) -> bool:
        """Whether a listed name would hit one of the reserved names."""
        if name in self.names:
            return True
        if not self._forms or not _tails(name) & self._tails:
            return False
        form = parse_name(name)
        return form is not None and any(name_score(r, form) >= self._bar for r in self._forms)


def _tails(name: str) -> frozenset[str]:
    last = name.rstrip()[-1:] if name else ""
    return frozenset(blocking_fold(r).removesuffix("g") for r in char_readings(last)) if last else frozenset()


NO_RESERVED = Reserved(frozenset(), frozenset())
