import json

import pytest

from extractors import EndpointNotConfigured, endpoint_from_airflow, endpoint_from_env


def test_airflow_connection_extras_carry_tds_version_and_charset(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_JINBAO_CITY_TEST",
        json.dumps(
            {
                "conn_type": "mssql",
                "host": "127.0.0.9",
                "port": 5000,
                "login": "etl",
                "password": "s3cret-pw",
                "schema": "mdj_si",
                "extra": {"tds_version": "5.0", "charset": "GB18030"},
            }
        ),
    )
    e = endpoint_from_airflow("jinbao_city_test")
    assert (e.host, e.port, e.user, e.database, e.tds_version, e.client_charset) == (
        "127.0.0.9",
        5000,
        "etl",
        "mdj_si",
        "5.0",
        "GB18030",
    )
    assert e.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(e) and "s3cret-pw" not in str(e)


def test_environment_endpoint_names_what_is_missing():
    with pytest.raises(EndpointNotConfigured, match="JINBAO_X_PORT, JINBAO_X_PASSWORD"):
        endpoint_from_env("JINBAO_X", environ={"JINBAO_X_HOST": "h", "JINBAO_X_USER": "u"})
    e = endpoint_from_env(
        "JINBAO_X",
        "db",
        environ={
            "JINBAO_X_HOST": "h",
            "JINBAO_X_PORT": "1433",
            "JINBAO_X_USER": "u",
            "JINBAO_X_PASSWORD": "pw-123456",
        },
    )
    assert (e.port, e.database) == (1433, "db") and "pw-123456" not in repr(e)
