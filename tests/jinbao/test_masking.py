from jinbao.masking import mask_id_number, mask_ids_in_text


def test_id_number_keeps_division_code_and_last_four():
    assert mask_id_number("11010519491231002X") == "110105********002X"


def test_ids_inside_json_are_masked_but_other_numbers_are_not():
    text = '{"aac002": "11010519491231002x", "old": "110105491231002", "aaz223": 9007199254740993, "tel": "13912345678"}'
    assert mask_ids_in_text(text) == (
        '{"aac002": "110105********002x", "old": "110105*****1002", "aaz223": 9007199254740993, "tel": "13912345678"}'
    )
