"""Correctness of what each method left in PostgreSQL, against the source read from DuckDB.

A copy (pandas, dlt, raw floor) must hold every source row with exact money and keys and the
names character for character (CHAR padding aside); jinbao must hold the loaded rows plus the
quarantined ones, with money reconciling to the cent, and the names the generator's truth expects.
"""

from __future__ import annotations

from decimal import Decimal

from bench import pg
from bench.source import SourceFacts

CENT = Decimal("0.01")


def _cents(v) -> Decimal:
    return Decimal(str(v)).quantize(CENT)


def _pad_free(s: str | None) -> str | None:
    return None if s is None else s.rstrip(" ")


def compare_text(samples: list[dict], found: dict[str, str | None], expected_key: str) -> dict:
    """Names found in the target against the expected ones; a missing sample is a failure too."""
    bad = []
    for s in samples:
        want = s.get(expected_key)
        if want is None:
            want = s["source_name"]
        got = found.get(s["person_no"])
        ok = _pad_free(got) == _pad_free(want) if expected_key == "source_name" else got == want
        if not ok:
            bad.append({"person_no": s["person_no"], "expected": want, "found": got})
    return {
        "samples": len(samples),
        "mismatches": bad[:5],
        "mismatch_count": len(bad),
        "ok": not bad and bool(samples),
    }


def check_copy(url: str, table: str, text_table: str, facts: SourceFacts) -> dict:
    """A plain copy: all rows, money per column exact to the cent, keys exact, text intact."""
    schema, name = table.split(".")
    types = dict(
        pg.query(
            url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema, name],
        )
    )
    # each method names columns its own way (pandas keeps PAY_ID, dlt writes pay_id): match without case
    actual = {c.lower(): c for c in types}
    types = {m: types[actual[m.lower()]] for m in [*facts.columns, *facts.money] if m.lower() in actual}

    def col(name: str) -> str:
        return '"' + actual.get(name.lower(), name) + '"'

    key = facts.columns[0]
    money = list(facts.money)
    sums = ", ".join(f"sum({col(m)}::numeric)" for m in money)
    row = pg.query(url, f"SELECT count(*), sum({col(key)}::numeric), max({col(key)}), {sums} FROM {table}")[0]
    n, key_sum, key_max, *money_sums = row
    money_ok = {m: _cents(got) == _cents(facts.money[m]) for m, got in zip(money, money_sums, strict=True)}
    float_money = [m for m in money if types.get(m) in ("double precision", "real")]
    kt = types.get(key)
    samples = facts.text_samples
    pno = [s["person_no"] for s in samples]
    tcols = [
        c
        for c in pg.query(
            url,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position",
            text_table.split("."),
        )
    ]
    knum, kname = tcols[0][0], tcols[1][0]
    if knum == "index":  # pandas writes its index first
        knum, kname = tcols[1][0], tcols[2][0]
    found = dict(
        pg.query(
            url, f'SELECT rtrim("{knum}"), "{kname}" FROM {text_table} WHERE rtrim("{knum}") = ANY(%s)', [pno]
        )
    )
    text = compare_text(samples, found, "source_name")
    out = {
        "rows": int(n),
        "rows_ok": int(n) == facts.rows,
        "money_ok": all(money_ok.values()),
        "money_by_column_ok": money_ok,
        "money_total": str(sum((Decimal(str(v)) for v in money_sums), Decimal(0))),
        "money_types": {m: types.get(m) for m in money},
        "money_as_float": float_money,
        "keys_ok": Decimal(key_sum) == facts.key_sum and int(key_max) == facts.key_max,
        "key_type": kt,
        "text": text,
    }
    out["ok"] = out["rows_ok"] and out["money_ok"] and out["keys_ok"] and text["ok"]
    return out


def check_jinbao(url: str, city: str, result: dict, facts: SourceFacts) -> dict:
    """Loaded + quarantined = source rows; loaded money + quarantined money = source money; truth matches."""
    rec = result["entities"]["contribution"]
    loaded, money, key_sum_loaded = pg.query(
        url,
        "SELECT count(*), CAST(coalesce(sum(contribution_base), 0) + coalesce(sum(employer_due), 0) "
        "+ coalesce(sum(employer_to_account), 0) + coalesce(sum(individual_due), 0) "
        "+ coalesce(sum(individual_to_account), 0) AS numeric(38,2)), coalesce(sum(source_key::numeric), 0) "
        "FROM province.contribution WHERE source_city = %s",
        [city],
    )[0]
    quarantined, key_sum_q = pg.query(
        url,
        "SELECT count(*), coalesce(sum(CASE WHEN source_key ~ '^[0-9]+$' THEN source_key::numeric END), 0) "
        "FROM province.quarantine WHERE source_city = %s AND entity = 'contribution'",
        [city],
    )[0]
    q_money = Decimal(rec["quarantined_money"])
    samples = facts.text_samples
    found = dict(
        pg.query(
            url,
            "SELECT source_person_no, name FROM province.person_xref WHERE source_city = %s AND source_person_no = ANY(%s)",
            [city, [s["person_no"] for s in samples]],
        )
    )
    text = compare_text(samples, found, "truth_name")
    out = {
        "rows": int(loaded),
        "quarantined": int(quarantined),
        "rows_ok": int(loaded) + int(quarantined) == facts.rows,
        "money_ok": _cents(Decimal(money) + q_money) == _cents(facts.money_total),
        "money_total_loaded": str(money),
        "money_total_quarantined": str(q_money),
        "keys_ok": Decimal(key_sum_loaded) + Decimal(key_sum_q) == facts.key_sum,
        "truth_ok": None
        if facts.truth_rows is None
        else (int(loaded) == facts.truth_rows and _cents(money) == _cents(facts.truth_money)),
        "reconciled": bool(result.get("reconciled")),
        "text": text,
    }
    out["ok"] = (
        out["rows_ok"]
        and out["money_ok"]
        and out["keys_ok"]
        and out["truth_ok"] is not False
        and out["reconciled"]
        and text["ok"]
    )
    return out


def check_incremental(url: str, city: str, change: dict, new_values: dict[str, Decimal]) -> dict:
    """Every changed row that jinbao holds carries its new amount."""
    keys = [str(k) for k in change["keys"]]
    got = dict(
        pg.query(
            url,
            "SELECT source_key, employer_due FROM province.contribution WHERE source_city = %s AND source_key = ANY(%s)",
            [city, keys],
        )
    )
    stale = [k for k, v in got.items() if _cents(v) != _cents(new_values[k])]
    return {
        "changed": len(keys),
        "held": len(got),
        "stale": len(stale),
        "stale_keys": stale[:5],
        "ok": not stale and bool(got),
    }
