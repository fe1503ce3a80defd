"""The pools synthetic residents are drawn from: prefectures, name lists, hard-case names, nations, 在留資格.

Data, not logic: kept apart from :mod:`conformance.residents` (which draws from them) so that the factory
reads as code and these tables can grow without making it longer.
"""

from __future__ import annotations

from dataclasses import dataclass

SP = "\u3000"  # full-width space between surname and given name
IVS1 = "\U000e0100"  # VARIATION SELECTOR-17 (first IVS)

#: Hard-case kinds, dealt round-robin to the residents drawn as hard so that every kind appears early.
HARD_KINDS: tuple[str, ...] = ("ivs", "jisx0213", "beyond_jis", "long_name", "former_surname", "foreign",
                               "foreign_tsusho", "uncertain_date", "old_era")

# (code, name, leading postal digits, capital's 3-digit city part, capital's name). Capital codes are real.
PREFECTURES: tuple[tuple[str, str, int, str, str], ...] = (
    ("01", "北海道", 60, "100", "札幌市"), ("02", "青森県", 30, "201", "青森市"),
    ("03", "岩手県", 20, "201", "盛岡市"), ("04", "宮城県", 980, "100", "仙台市"),
    ("05", "秋田県", 10, "201", "秋田市"), ("06", "山形県", 990, "201", "山形市"),
    ("07", "福島県", 960, "201", "福島市"), ("08", "茨城県", 310, "201", "水戸市"),
    ("09", "栃木県", 320, "201", "宇都宮市"), ("10", "群馬県", 371, "201", "前橋市"),
    ("11", "埼玉県", 330, "100", "さいたま市"), ("12", "千葉県", 260, "100", "千葉市"),
    ("13", "東京都", 100, "101", "千代田区"), ("14", "神奈川県", 220, "100", "横浜市"),
    ("15", "新潟県", 950, "100", "新潟市"), ("16", "富山県", 930, "201", "富山市"),
    ("17", "石川県", 920, "201", "金沢市"), ("18", "福井県", 910, "201", "福井市"),
    ("19", "山梨県", 400, "201", "甲府市"), ("20", "長野県", 380, "201", "長野市"),
    ("21", "岐阜県", 500, "201", "岐阜市"), ("22", "静岡県", 420, "100", "静岡市"),
    ("23", "愛知県", 460, "100", "名古屋市"), ("24", "三重県", 514, "201", "津市"),
    ("25", "滋賀県", 520, "201", "大津市"), ("26", "京都府", 600, "100", "京都市"),
    ("27", "大阪府", 530, "100", "大阪市"), ("28", "兵庫県", 650, "100", "神戸市"),
    ("29", "奈良県", 630, "201", "奈良市"), ("30", "和歌山県", 640, "201", "和歌山市"),
    ("31", "鳥取県", 680, "201", "鳥取市"), ("32", "島根県", 690, "201", "松江市"),
    ("33", "岡山県", 700, "100", "岡山市"), ("34", "広島県", 730, "100", "広島市"),
    ("35", "山口県", 753, "203", "山口市"), ("36", "徳島県", 770, "201", "徳島市"),
    ("37", "香川県", 760, "201", "高松市"), ("38", "愛媛県", 790, "201", "松山市"),
    ("39", "高知県", 780, "201", "高知市"), ("40", "福岡県", 810, "130", "福岡市"),
    ("41", "佐賀県", 840, "201", "佐賀市"), ("42", "長崎県", 850, "201", "長崎市"),
    ("43", "熊本県", 860, "100", "熊本市"), ("44", "大分県", 870, "201", "大分市"),
    ("45", "宮崎県", 880, "201", "宮崎市"), ("46", "鹿児島県", 890, "201", "鹿児島市"),
    ("47", "沖縄県", 900, "201", "那覇市"),
)
_PREF = {p[0]: p for p in PREFECTURES}
# A few more real codes, so the examples in DOMAIN.md get their real names.
_KNOWN: dict[str, str] = {f"{p[0]}{p[3]}": p[4] for p in PREFECTURES} | {
    "13113": "渋谷区", "13104": "新宿区", "13106": "台東区", "47382": "八重山郡与那国町",
}

_MORPH_A = "東西南北上下中新大小高本若白黒青朝松竹梅桜柳杉藤菊鶴亀鹿熊鷹春夏秋金宮神石岩花森沢池橋"
_MORPH_B = "山川田野原沢浜崎島井谷岡坂瀬津尾木林根江浦里"

# --- hard-case surname pools: (kanji, kana) ---------------------------------------------------------------
IVS_SURNAMES: tuple[tuple[str, str], ...] = (
    (f"葛{IVS1}西", "カサイ"), (f"葛{IVS1}城", "カツラギ"), (f"葛{IVS1}原", "クズハラ"),
    (f"辻{IVS1}", "ツジ"), (f"辻{IVS1}本", "ツジモト"), (f"辻{IVS1}村", "ツジムラ"),
)
#: In JIS X 0213 but not JIS X 0208 (塚 U+FA10 has a canonical decomposition: NFC turns it into 塚).
JISX0213_SURNAMES: tuple[tuple[str, str], ...] = (
    ("山\ufa11", "ヤマザキ"), ("宮\ufa11", "ミヤザキ"), ("濵田", "ハマダ"), ("栁田", "ヤナギダ"),
    ("桒原", "クワバラ"), ("草彅", "クサナギ"), ("德永", "トクナガ"), ("瀨戸", "セト"),
    ("大\ufa10", "オオツカ"), ("\U0002123d屋", "ツチヤ"),
)
#: Beyond JIS X 0213 too (𠮷 U+20BB7, 髙 U+9AD9): only Unicode / MJ carry them.
BEYOND_JIS_SURNAMES: tuple[tuple[str, str], ...] = (
    ("\U00020bb7田", "ヨシダ"), ("\U00020bb7川", "ヨシカワ"), ("髙橋", "タカハシ"), ("髙木", "タカギ"),
    ("髙田", "タカダ"),
)
LONG_SURNAMES: tuple[tuple[str, str], ...] = (
    ("勘解由小路", "カデノコウジ"), ("左衛門三郎", "サエモンサブロウ"),
    ("正親町三条", "オオギマチサンジョウ"), ("勅使河原", "テシガワラ"), ("東坊城", "ヒガシボウジョウ"),
)
LONG_GIVEN_MALE: tuple[tuple[str, str], ...] = (
    ("惣右衛門", "ソウエモン"), ("藤四郎", "トウシロウ"), ("健太郎", "ケンタロウ"),
    ("龍之介", "リュウノスケ"),
)
LONG_GIVEN_FEMALE: tuple[tuple[str, str], ...] = (
    ("千代之助", "チヨノスケ"), ("小百合", "サユリ"), ("亜希子", "アキコ"), ("由紀恵", "ユキエ"),
)

# --- foreign residents ------------------------------------------------------------------------------------
# (Latin, kana, kanji or "") per part.
_Part = tuple[str, str, str]  # (Latin, kana, kanji or "")


def _parts(spec: str) -> list[_Part]:
    """Parse "WANG/ワン/王 VAN_ANH/ヴァン_アイン" (``_`` is a space: ASCII in Latin, full-width in kana)."""
    out: list[_Part] = []
    for item in spec.split(" "):
        latin, kana, *kanji = item.split("/")
        out.append((latin.replace("_", " "), kana.replace("_", SP), kanji[0] if kanji else ""))
    return out


@dataclass(frozen=True, slots=True)
class _Nation:
    weight: float
    abroad: str  # 国外の住所 for 国外転入
    sur: list[_Part]
    male: list[_Part]
    female: list[_Part]
    special_permanent: bool = False  # 特別永住者 possible
    middle: bool = False  # Western middle names


_NATIONS: dict[str, _Nation] = {
    "中国": _Nation(28, "中華人民共和国北京市",
                    _parts("WANG/ワン/王 LI/リ/李 ZHANG/チャン/張 LIU/リュウ/劉 CHEN/チェン/陳 YANG/ヤン/楊"),
                    _parts("WEI/ウェイ/偉 HAO/ハオ/浩 JUN/ジュン/軍 MING/ミン/明"),
                    _parts("JING/ジン/静 YAN/イェン/燕 LINA/リナ/麗娜 XIUYING/シウイン/秀英")),
    "韓国": _Nation(13, "大韓民国ソウル特別市",
                    _parts("KIM/キム/金 LEE/イ/李 PARK/パク/朴 CHOI/チェ/崔 JUNG/チョン/鄭"),
                    _parts("MINJUN/ミンジュン/敏俊 SUNGHO/ソンホ/成浩 DONGHYUN/ドンヒョン/東賢"),
                    _parts("JIYOUNG/ジヨン/智英 MIKYUNG/ミギョン/美京 SUJIN/スジン/秀珍"),
                    special_permanent=True),
    "朝鮮": _Nation(2, "朝鮮", _parts("KIM/キム/金 RI/リ/李 PAK/パク/朴"),
                    _parts("YONGSU/ヨンス/英洙 CHOLHO/チョルホ/哲浩"),
                    _parts("SUNHUI/スンヒ/順姫 YONGOK/ヨンオク/英玉"), special_permanent=True),
    "台湾": _Nation(6, "台湾台北市", _parts("CHEN/チェン/陳 LIN/リン/林 HUANG/ファン/黄"),
                    _parts("CHIHMING/チーミン/志明 CHENGHAN/チェンハン/承翰"),
                    _parts("SHUFEN/シューフェン/淑芬 YATING/ヤーティン/雅婷"), special_permanent=True),
    "ベトナム": _Nation(20, "ベトナム社会主義共和国ハノイ市",
                        _parts("NGUYEN/グエン TRAN/チャン LE/レ PHAM/ファム HOANG/ホアン"),
                        _parts("VAN_ANH/ヴァン_アイン DUC_MINH/ドゥック_ミン QUANG_HUY/クアン_フイ"),
                        _parts("THI_HOA/ティ_ホア THI_LAN/ティ_ラン THU_TRANG/トゥー_チャン")),
    "フィリピン": _Nation(9, "フィリピン共和国マニラ市",
                          _parts("SANTOS/サントス REYES/レイエス CRUZ/クルス BAUTISTA/バウティスタ"
                                 " DELA_CRUZ/デラ_クルス"),
                          _parts("JOSE/ホセ MARK/マーク JOHN_PAUL/ジョン_ポール"),
                          _parts("MARIA/マリア ANGELICA/アンジェリカ MARY_GRACE/メアリー_グレース")),
    "ブラジル": _Nation(6, "ブラジル連邦共和国サンパウロ州",
                        _parts("SILVA/シルバ OLIVEIRA/オリベイラ SOUZA/ソウザ PEREIRA/ペレイラ"
                               " DOS_SANTOS/ドス_サントス"),
                        _parts("PEDRO/ペドロ LUCAS/ルーカス RAFAEL/ハファエル"),
                        _parts("ANA/アナ JULIANA/ジュリアナ BEATRIZ/ベアトリス")),
    "ネパール": _Nation(6, "ネパール連邦民主共和国カトマンズ市",
                        _parts("SHRESTHA/シュレスタ GURUNG/グルン TAMANG/タマン RAI/ライ"),
                        _parts("RAM/ラム BIKASH/ビカス SURESH/スレス"),
                        _parts("SITA/シタ ANITA/アニタ PUJA/プジャ")),
    "インドネシア": _Nation(4, "インドネシア共和国ジャカルタ特別州",
                            _parts("SAPUTRA/サプトラ WIJAYA/ウィジャヤ SETIAWAN/スティアワン"),
                            _parts("AGUS/アグス BUDI/ブディ"), _parts("SITI/シティ DEWI/デウィ")),
    "米国": _Nation(4, "アメリカ合衆国カリフォルニア州",
                    _parts("SMITH/スミス JOHNSON/ジョンソン WILLIAMS/ウィリアムズ BROWN/ブラウン"
                           " MILLER/ミラー"),
                    _parts("JOHN/ジョン JAMES/ジェームズ MICHAEL/マイケル WILLIAM/ウィリアム"
                           " DAVID/デイビッド"),
                    _parts("EMILY/エミリー SARAH/サラ JENNIFER/ジェニファー ELIZABETH/エリザベス"),
                    middle=True),
    "英国": _Nation(2, "英国ロンドン市",
                    _parts("TAYLOR/テイラー JONES/ジョーンズ DAVIES/デイビース EVANS/エバンズ"),
                    _parts("OLIVER/オリバー GEORGE/ジョージ HARRY/ハリー"),
                    _parts("CHARLOTTE/シャーロット AMELIA/アメリア OLIVIA/オリビア"), middle=True),
}
_NATION_NAMES = tuple(_NATIONS)
_LONG_NAME_NATIONS = ("ブラジル", "フィリピン", "ベトナム", "米国", "英国")  # pools that reach 30-40 letters
_NATION_WEIGHTS = tuple(_NATIONS[n].weight for n in _NATION_NAMES)

# (在留資格, possible 在留期間 or () for none, weight)
_STATUSES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("永住者", (), 30), ("技術・人文知識・国際業務", ("5年", "3年", "1年"), 15),
    ("留学", ("4年3月", "2年", "1年3月"), 12), ("家族滞在", ("3年", "1年"), 8),
    ("日本人の配偶者等", ("3年", "1年"), 6), ("定住者", ("5年", "3年"), 6), ("技能実習", ("1年",), 8),
    ("特定技能", ("1年",), 8), ("経営・管理", ("3年", "1年"), 2), ("永住者の配偶者等", ("3年",), 2),
)
