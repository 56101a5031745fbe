"""KeyLookup answers as pyarrow's index_in does, with the hash table built once for every page."""

import pyarrow as pa
import pyarrow.compute as pc

from transforms.lookup import KeyLookup, PersonIndex


def test_positions_match_index_in_including_absent_null_and_repeated_keys():
    keys = pa.chunked_array(
        [["DQ001", "000120", "李喆"], ["DQ001", "", "X9"]]
    )  # DQ001 twice: the first counts
    values = pa.array(["X9", None, "DQ001", "missing", "", "000120", "李喆", "000120 "])
    expected = pc.index_in(values, value_set=keys.combine_chunks())
    got = KeyLookup(keys).positions(values)
    assert got.to_pylist() == expected.to_pylist() == [5, None, 0, None, 4, 1, 2, None]
    assert got.type == pa.int64()


def test_an_empty_key_set_finds_nothing():
    assert KeyLookup(pa.array([], pa.string())).positions(pa.array(["a", None])).to_pylist() == [None, None]


def test_person_index_resolves_person_numbers_page_after_page():
    index = PersonIndex(
        pa.table(
            {"source_person_no": ["P1", "P2"], "id_number": ["230103190001010034", "11010519491231002X"]}
        )
    )
    for page in (pa.array(["P2", "P3"]), pa.chunked_array([["P1"], [None, "P2"]])):
        ids = pc.take(index.column("id_number"), index.positions(page))
        expected = {"P1": "230103190001010034", "P2": "11010519491231002X"}
        assert ids.to_pylist() == [expected.get(p) for p in page.to_pylist()]
