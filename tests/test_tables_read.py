"""Tables as people save them: a European Excel ``;`` file, a tab file, cp1252 and BOM
encodings, a header naming a column twice; predict's standard-library reader reads them the
same way, and data.delimiter / data.encoding win over what is detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcycle.core.errors import UserError
from mlcycle.edge.csv_format import csv_format, sniff_delimiter
from mlcycle.edge.rows import read_rows
from mlcycle.tables import TabularData
from mlcycle.tables.read import read_table

ROWS = [("café", "1.5", "yes"), ("thé", "2.5", "no"), ("crème", "3.0", "yes")]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def table_text(delimiter: str) -> str:
    lines = [delimiter.join(("drink", "price", "liked"))]
    lines += [delimiter.join(row) for row in ROWS]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_the_delimiter_is_sniffed_for_training_and_for_predict(tmp_path, delimiter):
    file = write(tmp_path / "drinks.csv", table_text(delimiter))
    frame = read_table("csv", str(file))
    assert list(frame.columns) == ["drink", "price", "liked"]
    assert frame["price"].tolist() == [1.5, 2.5, 3.0]
    header, rows = read_rows(file)
    assert header == ["drink", "price", "liked"] and rows[0] == ["café", "1.5", "yes"]


def test_decimal_commas_do_not_fool_the_sniffer():
    # European Excel: ';' between cells, ',' inside numbers; as many commas as semicolons.
    assert sniff_delimiter("a;b\n1,5;2,5\n3,5;4,5\n") == ";"
    assert sniff_delimiter('name,note\nx,"a;b"\ny,"c;d"\n') == ","
    assert sniff_delimiter("only\n1\n2\n") == ","


def test_a_cp1252_file_is_read_with_a_note(tmp_path, capsys):
    file = write(tmp_path / "drinks.csv", table_text(";") + "pâté;4.0;no\r\n", "cp1252")
    frame = read_table("csv", str(file))
    assert frame["drink"].tolist()[0] == "café" and frame["drink"].tolist()[-1] == "pâté"
    assert "read as cp1252" in capsys.readouterr().err
    assert read_rows(file)[1][0][0] == "café"


def test_a_latin1_byte_that_cp1252_lacks_falls_to_latin1(tmp_path):
    file = write(tmp_path / "odd.csv", "a,b\nx\x81,1\n", "latin-1")
    assert csv_format(file) == (",", "latin-1")
    assert read_table("csv", str(file))["a"].tolist() == ["x\x81"]


def test_a_bom_does_not_reach_the_first_column_name(tmp_path, capsys):
    file = write(tmp_path / "drinks.csv", "\ufeff" + table_text(","))
    assert list(read_table("csv", str(file)).columns)[0] == "drink"
    assert read_rows(file)[0][0] == "drink"
    assert "note" not in capsys.readouterr().err  # UTF-8 says nothing


def test_a_duplicated_header_name_warns_in_one_line(tmp_path, capsys):
    file = write(tmp_path / "dup.csv", "x,y,x\n1,2,3\n4,5,6\n")
    frame = read_table("csv", str(file))
    assert list(frame.columns) == ["x", "y", "x.1"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'x' more than once" in err and "x.1" in err


def test_an_explicit_delimiter_and_encoding_win(tmp_path):
    # Sniffed, this file splits on ','; the user says its cells are separated by ';'.
    file = write(tmp_path / "odd.csv", "a,b;c\n1,2;3\n4,5;6\n", "utf-16")
    with pytest.raises(UserError, match="set data.encoding"):
        read_table("csv", str(file), encoding="utf-8")
    frame = read_table("csv", str(file), delimiter=";", encoding="utf-16")
    assert list(frame.columns) == ["a,b", "c"]
    assert read_table("csv", str(file), delimiter="comma", encoding="utf-16").shape[1] == 2
    with pytest.raises(UserError, match="data.encoding 'klingon'"):
        read_table("csv", str(file), encoding="klingon")


def test_tabular_data_takes_the_keys(tmp_path):
    rows = [("\t".join((f"d{i}é", str(i), "yes" if i % 2 else "no"))) for i in range(40)]
    file = write(tmp_path / "drinks.csv", table_text("\t") + "\r\n".join(rows), "cp1252")
    data = TabularData(path=str(file), target="liked", delimiter="tab", encoding="cp1252")
    assert data.table.read_rows == 43
    assert [c.name for c in data.table.schema.columns] == ["drink", "price", "liked"]
