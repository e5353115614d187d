"""The small TOML writer: everything it writes reads back equal with tomllib / tomli."""
import math

import numpy as np
import pytest

from sgdscope.store._toml import dumps, loads, read_toml, write_toml


CONFIG = {
    "name": "break_even",
    "seed": 0,
    "big": 2**63 - 1,
    "negative": -7,
    "debug": False,
    "fast": True,
    "lr": 1e-3,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "third": 1 / 3,
    "minus_zero": -0.0,
    "whole": 2.0,
    "quote": 'say "hi" \\ back\\slash',
    "control": "tab\tnewline\nreturn\rbell\x07del\x7f",
    "unicode": "λ_max — 最大",
    "empty": "",
    "sizes": [32, 64, 128],
    "mixed": [1, "two", 3.0, True, [4, [5]]],
    "nothing": [],
    "odd key.with dots": 1,
    "": "empty key",
    "optimizer": {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "schedule": {"kind": "cosine", "warmup": 100, "milestones": [0.5, 0.75]},
        "empty_table": {},
    },
    "probes": [
        {"name": "lanczos", "every": 100, "k": 20, "which": "LA"},
        {"name": "k_spectrum", "every": 500, "args": {"L": 64, "shift": [1, 2]}},
        {},
    ],
    "model": {"widths": [[1, 2], [3]], "weird key": {"a b": 1}},
}


def test_round_trip_nested_tables_lists_bools_floats_strings():
    text = dumps(CONFIG)
    assert loads(text) == CONFIG
    assert dumps(loads(text)) == text  # stable


def test_floats_round_trip_bit_exactly():
    values = [1e-3, 0.1, 1 / 3, 1e16, 1e-16, 123456789.123456789, 5e-324, 2.0**-1074 * 3]
    back = loads(dumps({"x": values}))["x"]
    assert [v.hex() for v in back] == [v.hex() for v in values]
    assert all(isinstance(v, float) for v in back)
    assert math.copysign(1, loads(dumps({"z": -0.0}))["z"]) == -1


def test_special_floats():
    back = loads(dumps({"a": float("nan"), "b": float("inf"), "c": -float("inf")}))
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf


def test_types_are_kept():
    back = loads(dumps({"i": 3, "f": 3.0, "b": True, "s": "3"}))
    assert [type(v) for v in back.values()] == [int, float, bool, str]


def test_tables_after_plain_keys_whatever_the_dict_order():
    data = {"table": {"x": 1}, "after": 2}
    text = dumps(data)
    assert text.index("after") < text.index("[table]")
    assert loads(text) == data


def test_none_is_dropped_in_dicts_tuples_become_lists_numpy_scalars_become_python():
    data = {"a": None, "t": (1, 2), "sub": {"b": None, "c": 1}, "inline": [{"d": None, "e": 2}],
            "npf": np.float64(0.25), "npi": np.int64(3), "npb": np.bool_(True)}
    assert loads(dumps(data)) == {"t": [1, 2], "sub": {"c": 1}, "inline": [{"e": 2}],
                                  "npf": 0.25, "npi": 3, "npb": True}


def test_empty_document():
    assert dumps({}) == ""
    assert loads(dumps({})) == {}


@pytest.mark.parametrize("data, match", [
    ({"a": [1, None]}, r"a\.\[1\].*NoneType"),
    ({"a": {"b": object()}}, r"a\.b.*object"),
    ({1: "x"}, "keys must be str"),
    ({"a": 2**64}, "64 bits"),
])
def test_unsupported_values_name_the_key(data, match):
    with pytest.raises((TypeError, ValueError), match=match):
        dumps(data)


def test_file_round_trip_and_parse_error_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    write_toml(path, CONFIG)
    assert read_toml(path) == CONFIG
    assert not [p for p in tmp_path.iterdir() if p.name != "config.toml"]  # no temp left
    path.write_text("a = = 1\n")
    with pytest.raises(ValueError, match="config.toml"):
        read_toml(path)
