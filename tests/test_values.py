"""The checks of user-given values (vectorflow.values, vectorflow.timeframes.parse_time)."""

from __future__ import annotations

import pytest

from vectorflow import values
from vectorflow.errors import InvalidInput
from vectorflow.timeframes import LATEST_MS, parse_time

GOOD = [
    (lambda: values.count("3", name="--n"), 3),
    (lambda: values.count(1, name="n"), 1),
    (lambda: values.integer("0", name="--t", minimum=0), 0),
    (lambda: values.port("0"), 0),
    (lambda: values.port("65535"), 65535),
    (lambda: values.number("0.5", name="--s", above=0), 0.5),
    (lambda: values.number("0", name="delay", minimum=0), 0.0),
    (lambda: values.literal_name("BTCUSDT", name="symbol"), "BTCUSDT"),
    (lambda: parse_time("1970-01-01"), 0),
    (lambda: parse_time("9999-12-31T23:59:59.999Z"), LATEST_MS),
    (lambda: parse_time("2024-01-01T01:00:00+01:00"), 1_704_067_200_000),
]

BAD = [
    (lambda: values.count("0", name="--n"), "--n '0' must be at least 1"),
    (lambda: values.count("-3", name=""), "'-3' must be at least 1"),
    (lambda: values.count("x", name="after"), "after 'x' is not a whole number"),
    (lambda: values.count(True, name="n"), "n True is not a whole number"),
    (lambda: values.count("1001", name="levels", maximum=1000), "'1001' must be at most 1000"),
    (lambda: values.port("-1", name="--port"), "--port '-1' must be at least 0"),
    (lambda: values.port("65536"), "port '65536' must be at most 65535"),
    (lambda: values.number("0", name="--s", above=0), "'0' must be greater than 0"),
    (lambda: values.number("nan", name="--s"), "'nan' is not a finite number"),
    (lambda: values.number("fast", name="--s"), "'fast' is not a number"),
    (lambda: values.literal_name("BTC*", name="symbol"), "symbol 'BTC*' is not a literal name"),
    (lambda: values.literal_name("[ab]", name="x"), "[ would match others"),
    (lambda: values.literal_name(" ", name="x"), "' ' is not a name"),
    (lambda: parse_time("0999-01-01", name="--since"), "'0999-01-01' is outside the years"),
    (lambda: parse_time("99999999999999999999"), "is outside the years 1970 to 9999"),
    (lambda: parse_time(-1), "-1 is outside the years"),
    (lambda: parse_time("2030-01-01", latest=parse_time("2026-01-01")), "is in the future"),
]


@pytest.mark.parametrize("check,expected", GOOD)
def test_good_values_pass(check, expected):
    assert check() == expected


@pytest.mark.parametrize("check,message", BAD)
def test_bad_values_are_named(check, message):
    with pytest.raises(InvalidInput) as info:
        check()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_data_dir_must_be_a_folder_or_one_that_can_be_made(tmp_path):
    assert values.data_dir(tmp_path / "new" / "data", writable=True) == tmp_path / "new" / "data"
    assert not (tmp_path / "new").exists()  # checked, never created
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InvalidInput, match=f"data dir {afile} is a file"):
        values.data_dir(afile, writable=False)
    with pytest.raises(InvalidInput, match=f"is under {afile}, a file"):
        values.data_dir(afile / "data", writable=True)
