from extractors.encoding import score_values

NAMES = ["张三", "王镕", "李喆", "哈尔滨市南岗区西大直街1号", "欧阳娜娜"]


def test_gbk_bytes_behind_a_latin1_server_are_recognised():
    seen = [n.encode("gbk").decode("latin-1") for n in NAMES]  # what a client of an iso_1 server gets
    best = score_values(seen, "iso_1")[0]
    assert best.charset in ("gb18030", "gbk")
    assert best.decodable == 1.0 and best.ideographs == 1.0
    assert best.samples[0] == "张三"


def test_correctly_declared_chinese_text_stays_chinese():
    best = score_values(NAMES, "cp936")[0]
    assert best.charset in ("gb18030", "gbk") and best.mojibake == 0.0


def test_latin1_reading_is_penalised_as_mojibake():
    seen = [n.encode("gbk").decode("cp850") for n in NAMES]
    scores = {s.charset: s for s in score_values(seen, "cp850")}
    assert scores["cp850"].score < 0 < scores["gb18030"].score
