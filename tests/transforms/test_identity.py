import datetime as dt

import pyarrow as pa
import pytest
from stdnum.cn import ric

from transforms.identity import check_character, normalize_id_numbers


def _run(ids, births, sexes):
    res = normalize_id_numbers(
        pa.array(ids, pa.string()), pa.array(births, pa.date32()), pa.array(sexes, pa.string())
    )
    return res.id_number.to_pylist(), res.reason.to_pylist()


def test_check_character_agrees_with_the_standard_example_and_stdnum():
    bodies = ["11010519491231002", "23010319800101001", "23010519700228123", "23018419990909987"]
    got = check_character(pa.array(bodies)).to_pylist()
    assert got[0] == "X"  # GB 11643 example 11010519491231002X
    # stdnum's calc_check_digit takes the number including a (placeholder) check position
    assert got == [ric.calc_check_digit(b + "0") for b in bodies]


def test_lower_case_x_full_width_digits_and_stray_blanks_are_repaired():
    ids, reasons = _run(
        ["11010519491231002x", " １１01051949123100２x\u3000"],
        [dt.date(1949, 12, 31)] * 2,
        ["2", "2"],
    )
    assert ids == ["11010519491231002X", "11010519491231002X"]
    assert reasons == [None, None]


def test_fifteen_digit_id_is_upgraded_with_the_century_of_the_recorded_birth_date():
    ids, reasons = _run(
        ["110105491231002", "230103000101003"], [dt.date(1949, 12, 31), dt.date(1900, 1, 1)], ["2", "1"]
    )
    assert ids == ["11010519491231002X", "23010319000101003" + ric.calc_check_digit("230103190001010030")]
    assert reasons == [None, None]


def test_fifteen_digit_id_of_a_person_born_in_the_1800s_keeps_the_1800s():
    ids, reasons = _run(["230103991231001"], [dt.date(1899, 12, 31)], ["1"])
    assert ids[0].startswith("23010318991231001")
    assert ids[0][-1] == check_character(pa.array(["23010318991231001"])).to_pylist()[0]
    assert reasons == [None]


@pytest.mark.parametrize(
    ("raw", "birth", "sex", "reason"),
    [
        ("110105194912310021", dt.date(1949, 12, 31), "2", "ID_CHECK_DIGIT"),
        ("11010519491231002", dt.date(1949, 12, 31), "2", "ID_MALFORMED"),
        ("1101051949123100AX", dt.date(1949, 12, 31), "2", "ID_MALFORMED"),
        ("110105194913310025", dt.date(1949, 12, 31), "2", "ID_MALFORMED"),  # month 13
        ("110105194902300020", dt.date(1949, 3, 2), "2", "ID_MALFORMED"),  # 30 February is no date
        (None, dt.date(1949, 12, 31), "2", "ID_MALFORMED"),
        ("11010519491231002X", dt.date(1950, 12, 31), "2", "ID_BIRTH_DATE_MISMATCH"),
        ("11010519491231002X", dt.date(1949, 12, 31), "1", "ID_SEX_MISMATCH"),
    ],
)
def test_unusable_ids_get_the_first_failing_reason(raw, birth, sex, reason):
    ids, reasons = _run([raw], [birth], [sex])
    assert ids == [None]
    assert reasons == [reason]


def test_unstated_sex_is_not_a_mismatch():
    ids, reasons = _run(["11010519491231002X"], [dt.date(1949, 12, 31)], ["9"])
    assert ids == ["11010519491231002X"] and reasons == [None]
