"""Driver errors reach the user as one readable line."""

from extractors.exceptions import driver_message


def test_a_pymssql_error_reads_as_one_line_without_its_bytes_repr():
    exc = Exception((20009, b"DB-Lib error message 20009, severity 9:\nUnable to connect\n"))
    assert driver_message(exc) == "20009 DB-Lib error message 20009, severity 9: Unable to connect"


def test_an_odbc_error_keeps_its_state_and_text():
    exc = Exception("08001", "[08001] [FreeTDS][SQL Server]Unable to connect to data source (0)")
    assert driver_message(exc) == "08001 [08001] [FreeTDS][SQL Server]Unable to connect to data source (0)"
    assert driver_message(Exception()) == "Exception"
