"""Organization codes, unified social credit codes and the provincial employer id."""

import datetime as dt

import numpy as np
import pyarrow as pa
from stdnum.cn import uscc

from fixtures.generator.checks import org_check_char
from jinbao.spec import city_spec
from transforms.employer_codes import normalize_employer_codes, org_check_character, uscc_check_character
from transforms.normalize import normalize_batch


def test_check_characters_agree_with_the_standards_examples_and_python_stdnum():
    assert org_check_character(pa.array(["60003734"])).to_pylist() == ["1"]  # GB 11714's example
    assert uscc_check_character(pa.array(["91110000600037341"])).to_pylist() == ["L"]  # GB 32100's example
    rng = np.random.default_rng(7)
    alphabet = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
    bodies = ["".join(rng.choice(alphabet, 17)) for _ in range(2000)]
    assert uscc_check_character(pa.array(bodies)).to_pylist() == [uscc.calc_check_digit(b) for b in bodies]
    orgs = ["".join(rng.choice(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 8)) for _ in range(2000)]
    assert org_check_character(pa.array(orgs)).to_pylist() == [org_check_char(b) for b in orgs]


def test_codes_are_read_in_any_common_spelling_and_the_id_prefers_the_uscc():
    codes = normalize_employer_codes(
        org_code=pa.array(["60003734-1", "600037341", " 60003734 - 1 ", None, "", None]),
        uscc=pa.array(
            [None, "91110000600037341L", "91110000600037341l", "9111 0000 6000 3734 1L", " ", None]
        ),
        city="harbin",
        employer_no=pa.array(["E1", "E2", "E3", "E4", "E5", "E6"]),
    )
    assert codes.reason.to_pylist() == [None] * 6
    assert codes.org_code.to_pylist() == ["60003734-1", "60003734-1", "60003734-1", None, None, None]
    assert codes.uscc.to_pylist() == [None, *["91110000600037341L"] * 3, None, None]
    # the same employer under either code; one with neither is its city's own
    assert codes.employer_id.to_pylist() == ["60003734-1"] * 4 + ["harbin:E5", "harbin:E6"]


def test_a_doubtful_code_holds_the_employer_back():
    codes = normalize_employer_codes(
        org_code=pa.array(["60003734-2", "6000373-1", None, None, "12345678-8", "I0003734-1"]),
        uscc=pa.array([None, None, "91110000600037341M", "9111000060003734", "91110000600037341L", None]),
        city="qiqihar",
        employer_no=pa.array(["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]),
    )
    # wrong check, too short, wrong USCC check, USCC too short, a valid USCC embedding another organization
    # code than the valid one beside it, another body under the same check character
    assert codes.reason.to_pylist() == ["EMPLOYER_CODE_INVALID"] * 6


def test_a_uscc_whose_embedded_organization_code_fails_its_own_check_is_invalid():
    body = "9111000060003734" + "2"  # organization code 60003734-2: wrong check character
    bad = body + uscc.calc_check_digit(body)  # ... in a USCC whose own check character is right
    codes = normalize_employer_codes(pa.array([None]), pa.array([bad]), "daqing", pa.array(["DQ1"]))
    assert codes.reason.to_pylist() == ["EMPLOYER_CODE_INVALID"]


def test_employer_rows_carry_the_provincial_id_and_bad_codes_are_quarantined():
    spec = city_spec("daqing").entities["employer"]
    cols = list(spec.columns)
    rows = [
        (
            "DQ000001",
            None,
            "91230100600037341Q",
            "哈尔滨市龙江机械有限公司",
            "10",
            "230602",
            dt.datetime(2020, 1, 1),
        ),
        ("DQ000002", "60003734-1", None, "龙江机械大庆分部", "10", "230602", dt.datetime(2020, 1, 1)),
        ("DQ000003", "60003734-1", "91230100600037341Z", "坏码公司", "10", "230602", dt.datetime(2020, 1, 1)),
    ]
    batch = pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows], schema=spec.arrow_schema)
    out = normalize_batch("employer", batch, spec, "daqing")
    assert [(r["employer_no"], r["employer_id"], r["org_code"], r["uscc"]) for r in out.rows.to_pylist()] == [
        ("DQ000001", "60003734-1", None, "91230100600037341Q"),
        ("DQ000002", "60003734-1", "60003734-1", None),
    ]
    assert out.quarantined.column("source_key").to_pylist() == ["DQ000003"]
    assert out.quarantined.column("reason_code").to_pylist() == ["EMPLOYER_CODE_INVALID"]
