"""Name pools and character tables for the synthetic world (data only, no generation logic).

Surname frequencies are approximate national shares (per cent); given names are ranked, and
people.given_names puts their shares on the ranks, so that common names collide at scale as they
do in China (王伟, 张伟, 李娜) while most names are rare. Every character here is in the CJK
basic block (hence in GBK) unless it is listed in RARE_NOT_GBK, which only the UTF-8 sources may
carry.
"""
from __future__ import annotations


def _pairs(text: str) -> list[tuple[str, float]]:
    """'王 7.1 李 7.0' -> [('王', 7.1), ('李', 7.0)]."""
    parts = text.split()
    return [(parts[i], float(parts[i + 1])) for i in range(0, len(parts), 2)]


# Han surnames with approximate shares in per cent (top ~110, compound and heteronym ones rare).
HAN_SURNAMES: list[tuple[str, float]] = _pairs("""
王 7.12 李 7.06 张 6.85 刘 5.38 陈 4.53 杨 3.08 赵 2.29 黄 1.80 周 1.93 吴 2.05
徐 1.45 孙 1.68 胡 1.16 朱 1.28 高 1.40 林 0.90 何 1.05 郭 1.13 马 1.29 罗 0.86
梁 0.82 宋 0.70 郑 0.78 谢 0.72 韩 0.74 唐 0.68 冯 0.60 于 0.66 董 0.51 萧 0.10
程 0.41 曹 0.57 袁 0.49 邓 0.58 许 0.66 傅 0.20 沈 0.35 曾 0.45 彭 0.56 吕 0.38
苏 0.40 卢 0.34 蒋 0.46 蔡 0.45 贾 0.32 丁 0.37 魏 0.39 薛 0.20 叶 0.42 阎 0.06
余 0.45 潘 0.47 杜 0.43 戴 0.13 夏 0.26 钟 0.32 汪 0.29 田 0.52 任 0.36 姜 0.40
范 0.29 方 0.24 石 0.27 姚 0.34 谭 0.31 廖 0.20 邹 0.23 熊 0.23 金 0.30 陆 0.30
郝 0.20 孔 0.13 白 0.28 崔 0.38 康 0.16 毛 0.16 邱 0.22 秦 0.22 江 0.21 史 0.17
顾 0.16 侯 0.22 邵 0.15 孟 0.26 龙 0.18 万 0.15 段 0.19 雷 0.19 钱 0.14 汤 0.12
尹 0.21 黎 0.10 易 0.10 常 0.18 武 0.16 乔 0.13 贺 0.16 赖 0.08 龚 0.15 文 0.12
庞 0.10 樊 0.10 兰 0.08 殷 0.08 施 0.08 陶 0.17 洪 0.10 翟 0.06 安 0.10 颜 0.08
倪 0.07 严 0.14 牛 0.10 温 0.12 芦 0.05 季 0.07 俞 0.06 章 0.07 鲁 0.09 葛 0.09
伍 0.06 韦 0.08 申 0.07 尤 0.04 毕 0.06 聂 0.07 焦 0.07 房 0.05 付 0.25 闫 0.20
单 0.04 区 0.01 仇 0.03 解 0.03 查 0.02 覃 0.02 缪 0.02 朴 0.04 佟 0.04 那 0.02
欧阳 0.03 司马 0.004 上官 0.003 诸葛 0.003 司徒 0.003 皇甫 0.002 慕容 0.002
""")

# Surnames Mongolian families in Tongliao use (包/白/韩/吴 dominate), with rough weights.
MONGOL_SURNAMES: list[tuple[str, float]] = _pairs("""
包 30 白 18 韩 8 吴 6 宝 6 鲍 4 陈 3 何 3 于 3 金 2 黄 2 李 3 张 2 特 1 海 1 佟 1 鄂 1
""")

# Han given names by gender and era of birth (before 1970, 1970-1994, from 1995), in two parts:
# the common names, most common first (伟, 丽, 秀英 ...), and the characters the rest of the names
# are made of, most common first. people.given_names ranks the common names first, then names
# made of the characters, and puts a power law on the rank (params.GIVEN_NAMES): a few names are
# carried by one or two per cent of a cohort, most by a handful of people.
HAN_GIVEN_COMMON: dict[tuple[str, str], str] = {
    ("M", "old"): "建国 建华 国华 建军 国庆 志刚 建平 国强 振华 德明 明 军 华 平 文华 建民 "
                  "志强 国平 玉林 林 海 刚 强 卫国 卫东 红军 向东 金山 宝山 树林 长青 春生 国栋 "
                  "福 凤山 占山 玉山 永生 德山 志国 国良 国富 金海 海龙",
    ("M", "mid"): "伟 磊 勇 军 强 涛 杰 斌 超 鹏 刚 明 辉 波 峰 亮 健 海涛 建军 平 飞 东 海波 "
                  "志强 永刚 晓东 宏伟 建伟 俊 龙 小龙 海龙 志刚 宇 浩 旭 鑫 凯 晓明 海军 立新 "
                  "春雷 振宇 建华",
    ("M", "young"): "浩 宇 浩然 子轩 浩宇 宇轩 俊杰 博 杰 鑫 帅 子豪 梓轩 一鸣 天宇 晨 博文 "
                    "宇航 家豪 明轩 雨泽 佳豪 思远 子墨 嘉豪 皓轩 宇浩 梓豪 俊熙 奕辰 宇泽 睿 "
                    "浩轩 文博 昊天 铭 泽宇 晨阳 逸飞 涛",
    ("F", "old"): "秀英 桂英 秀兰 玉兰 桂兰 秀珍 凤英 玉珍 淑珍 玉英 兰英 淑兰 桂珍 秀云 淑华 "
                  "秀荣 凤兰 桂芝 淑芬 玉芝 秀芳 玉梅 桂荣 秀梅 凤琴 丽华 素珍 玉华 秀华 桂香 "
                  "玉霞 英 兰 华 珍 芳 红 凤芝 淑琴 桂芳 淑英 玉凤 秀芝",
    ("F", "mid"): "丽 静 娜 敏 芳 艳 燕 娟 霞 红 婷 丹 玲 颖 晶 洁 莉 梅 萍 丽娜 慧 海燕 雪 "
                  "春燕 红梅 琳 丽娟 晓燕 艳红 秀丽 晓红 婷婷 丹丹 晶晶 亚楠 雪梅 艳丽 丽丽 "
                  "晓丽 美玲",
    ("F", "young"): "欣怡 梓涵 子涵 雨涵 婷 佳怡 思雨 雨欣 可馨 欣然 诗涵 梦琪 紫涵 思涵 佳琪 "
                    "雨婷 一诺 梓萱 语涵 雨萱 欣妍 怡然 佳欣 心怡 雅琪 婧 悦 琪 萱 佳 颖 雪 诗琪 "
                    "思琪 雨桐 欣悦 子萱 佳慧 晨曦 依诺",
}


def _chars(text: str) -> str:
    """The characters of text once each, in their first order."""
    return "".join(dict.fromkeys(text))


HAN_GIVEN: dict[tuple[str, str], str] = {
    ("M", "old"): _chars("国建军明华文志福德富贵成林山海金玉宝荣忠庆平生春长永树才财喜祥民有学"
                         "兴广俊和义发胜万振宗东满占奎仁殿双全连印凤江河中红卫继绍景柱龙刚洪彬"
                         "清泉田丰立新章锁亮顺利宽云岭松柏青凯锦良臣会增武勤耀先廷汉昌宏伯堂"
                         "强栋向阁钧魁彪豹森茂盛旺敬儒光启斌瑞鹤仲孝礼信智勇"),
    ("M", "mid"): _chars("伟勇军磊强涛斌杰明刚峰辉鹏超波亮东海林华飞宇健俊龙平新春志国建文利宏"
                         "洪红晓云彬凯旭阳鑫浩敏锋冬雷光永兵立晨楠铁忠德博宁振兴成江亚胜武毅远"
                         "坤岩松柏虎威卫晖喜庆福涌泉峻川金玉剑宾昊达小彪帆军猛啸野闯钢柱全胜"
                         "学良磊晨震廷宝元朋奇铭琦炜玮巍崇洋淼"),
    ("M", "young"): _chars("浩宇子轩博泽然一俊杰鑫辰涛睿梓航昊天明晨豪翔磊伟鹏凯铭嘉瑞逸文奕宸"
                           "烨佳乐宁恒帅阳旭源洋琦硕皓炎哲锦程鸿峻熙晟霖彦森毅诚煜骏智昕远飞宏"
                           "煊翊润淳楷亦家思雨鸣墨彬栋振锐泓弘承安然政康辉骁鹤廷霆岳晋谦"
                           "朗峰澄麟默贤勋祺涵铖钧锋灏胤毓睿瀚"
                           "恩赫朔齐"),
    ("F", "old"): _chars("秀英兰玉桂芳珍淑凤华梅荣琴霞云翠春香素花爱敏菊芝莲彩金丽红艳萍娥清文"
                         "平芬娟月秋雅玲俊贞惠娣娇巧环美焕顺杏桃双喜慧琼瑞书亚凤振萍淑桂"
                         "秀梅宝珠丹彩云碧霄翠娟瑛彤娴敬雯荷萱芹莉贤德容凤芸凌桐婵蓉"),
    ("F", "mid"): _chars("丽娜艳敏静燕红霞丹娟玲芳晶慧颖雪婷洁琳莉梅萍杰宁晓欣佳楠琴媛岩冬月秀"
                         "英云蕾倩微薇蓉莹亚雯璐菲娇妍琼翠春凤芬波鑫岚茜婕瑶冰珊旭双露海美"
                         "小华丽影雁虹苗媛阳爽超莎芸月红青琦婉淑萌蓓馨贝嫣梦菁晴霏黎彦"
                         "君姗怡卉蔚"),
    ("F", "young"): _chars("欣怡雨涵梓萱佳悦思诗琪子馨婷雪紫嘉一可晨瑶妍琳彤钰婧乐心语若晗菲璐"
                           "蕊然月颖舒诺依梦雅静宁茹桐汐萌朵希芮沐恩瑾韵歆洁菡楚筱慧曦"
                           "安宜涵露芷珊妮凝娅薇晴欢柔萌嫣琦倩芊茜夏冉婉悠昕芯蕾"
                           "羽菲允熙艺谨杉"),
}

# Mongolian name elements (Chinese transliterations), by gender. A name is one element or two.
MONGOL_MALE = ("巴特尔 乌力吉 巴雅尔 额尔敦 毕力格 朝鲁 苏和 那顺 孟和 宝音 达来 敖其尔 哈斯 "
               "阿拉坦 特木尔 吉日嘎拉 满都拉 额尔德尼 图门 查干 白音 胡和 伊德尔 巴图 孟根 "
               "布和 那日苏 道尔吉 额日和 其力嘎 仁钦 桑布 扎布 宝力道 特古斯 宝力高 吉格木德 "
               "乌恩 巴根那 德力格尔 阿木古楞 呼和 那木吉拉 朝克图 达瓦 图布信").split()
MONGOL_FEMALE = ("其木格 其其格 萨仁 乌云 图雅 高娃 塔娜 娜仁 斯琴 托娅 萨日娜 乌兰 苏日娜 "
                 "敖登 娜布其 乌日娜 吉雅 格日勒 萨如拉 乌日汗 阿如汗 白乙拉 青格乐 阿茹娜 "
                 "诺敏 琪琪格 额尔敦 哈斯 其力嘎").split()

# Transliteration variants seen across registrations; the last kind is one syllable longer.
MONGOL_VARIANTS: dict[str, tuple[str, ...]] = {
    "巴特尔": ("巴图尔", "巴特儿", "巴特"), "其木格": ("其米格", "齐木格"),
    "额尔敦": ("额尔登", "额尔顿"), "其力嘎": ("其贺力嘎", "其力格"),
    "乌力吉": ("乌力格", "吴力吉"), "巴雅尔": ("巴亚尔", "巴雅儿"),
    "毕力格": ("必力格", "毕力戈"), "朝鲁": ("潮洛", "朝洛"), "苏和": ("苏赫",),
    "那顺": ("纳顺",), "孟和": ("蒙和", "孟赫"), "宝音": ("包音", "宝银"),
    "特木尔": ("铁木尔", "特穆尔"), "吉日嘎拉": ("吉日格勒", "吉日嘎朗"), "图雅": ("图娅",),
    "高娃": ("高哇",), "塔娜": ("他娜",), "娜仁": ("那仁",), "萨仁": ("沙仁",),
    "乌云": ("乌运", "乌云其"), "斯琴": ("思琴",), "阿拉坦": ("阿拉腾",),
    "其其格": ("琪琪格", "奇其格"), "格日勒": ("格日乐", "格热勒"), "额尔德尼": ("额尔德木",),
    "敖登": ("敖敦",), "那日苏": ("纳日苏",), "乌兰": ("乌兰其", "乌拉"), "巴图": ("巴图尔",),
    "哈斯": ("哈斯尔",), "满都拉": ("满都呼",), "达来": ("达赖",), "萨日娜": ("萨仁娜",),
}

# Milk names (乳名, 小名) families give small children and clerks write instead of the registered
# name, by gender, most common first (the generator puts a steep Zipf weight on the order, so
# 小宝 and 丫头 are each carried by thousands of infants across a prefecture).
MILK_NAMES_MALE = ("小宝 狗剩 胖墩 大宝 二宝 铁蛋 狗蛋 宝宝 石头 二蛋 虎子 小胖 小龙 小虎 豆豆 "
                   "栓柱 铁柱 柱子 毛毛 乐乐 小军 小强 小明 二小 三小 黑蛋 锁住 臭蛋 贝贝 胖胖"
                   ).split()
MILK_NAMES_FEMALE = ("丫头 二丫 小宝 妞妞 大丫 丫蛋 宝宝 小红 小花 胖丫 二妞 大妞 三丫 贝贝 豆豆 "
                     "小丽 小燕 小芳 毛毛 乐乐 胖胖 小美 丫丫 囡囡").split()
MILK_NAMES = tuple(dict.fromkeys(MILK_NAMES_MALE + MILK_NAMES_FEMALE))

# Look-alike characters (a clerk misreads the handwriting). Groups: each member may become another.
LOOKALIKE_GROUPS = ("己已巳 戊戌戍 候侯 王玉壬 未末 日曰 士土 宇字 乌鸟 祖租 祥详 徽微 人入 "
                    "天夭 干千于 午牛 拨拔 晴睛 住往 贝见 免兔 田由 甲申 白自 石右 辛幸 "
                    "清请 玲铃 艳滟 娟涓 淑叔 杨扬 凤风").split()

# Simplified -> traditional for common name and surname characters (written by older clerks or
# copied from old documents).
SIMPLIFIED_TO_TRADITIONAL: dict[str, str] = dict(zip(
    "张伟刘陈杨赵黄吴孙马郑罗谢韩冯邓叶苏吕卢钟谭陆龙贺顾龚钱严汤丽华国军红东兰凤艳刚辉鹏飞涛庆"
    "荣贵财宝杰强胜兴学凯岚娇晓云进达义礼长尔乌图额阳丰绍纪维结萧闫阎许赖韦门宁颖静爱伦",
    "張偉劉陳楊趙黃吳孫馬鄭羅謝韓馮鄧葉蘇呂盧鍾譚陸龍賀顧龔錢嚴湯麗華國軍紅東蘭鳳艷剛輝鵬飛濤慶"
    "榮貴財寶傑強勝興學凱嵐嬌曉雲進達義禮長爾烏圖額陽豐紹紀維結蕭閆閻許賴韋門寧穎靜愛倫",
))

# Extra common characters that widen the pool of homophone substitutes (王丽 -> 王莉, 静 -> 晶).
HOMOPHONE_EXTRA = ("莉立力利励黎俐礼理里李丽历厉栗晶精京经菁井景境竞敬径镜净婧静靖瑾锦"
                   "谨进近劲金津今筋尽慧惠会汇辉徽晖灰卉蕙红宏洪鸿虹弘泓宝保葆堡报抱豹"
                   "军君均钧俊峻骏珺华桦骅话画化花滑铧娟鹃捐涓隽眷倩茜芊千迁谦乾虔芳方"
                   "放坊舫仿纺飞菲妃非霏斐磊垒蕾雷镭擂明名铭鸣茗敏闵悯民岷珉伟玮炜维唯"
                   "薇微为卫威巍艳燕雁焰彦颜岩言延妍研砚秀绣袖岫修羞英莹营迎颖影盈瑛鹰"
                   "樱平萍屏凭苹娜那纳呐霞夏侠峡狭瑕梅美媚玫枚眉楣媒霉涛滔韬桃陶淘焘"
                   "洁杰捷婕颉节结姐解")

# Characters outside GBK that a UTF-8 registry may hold, and the substitute a GBK system gets.
RARE_NOT_GBK: dict[str, str] = {"䶮": "岩", "㛃": "洁"}

# Relation to the head: police canonical value -> spellings clerks use in NCMS.
RELATION_SPELLINGS: dict[str, tuple[str, ...]] = {
    "户主": ("户主", "本人", "户主"),
    "配偶": ("配偶", "妻", "妻子", "之妻"),
    "丈夫": ("配偶", "夫", "丈夫"),
    "子": ("子", "儿子", "之子"),
    "女": ("女", "女儿", "之女"),
    "父亲": ("父亲", "父", "之父"),
    "母亲": ("母亲", "母", "之母"),
    "儿媳": ("儿媳", "媳妇", "儿媳妇"),
    "孙子": ("孙子", "孙", "之孙"),
    "孙女": ("孙女", "孙", "之孙女"),
    # relations re-expressed to another head (a widow or a son who took over the household)
    "祖父": ("祖父", "爷爷"), "祖母": ("祖母", "奶奶"), "兄": ("兄", "哥哥", "哥"),
    "弟": ("弟", "弟弟"), "姐姐": ("姐姐", "姐"), "妹妹": ("妹妹", "妹"),
}

ORDINALS = "长次三四五六七"
CHINESE_NUMERALS = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十",
                    "十一", "十二", "十三", "十四", "十五")
