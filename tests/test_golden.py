"""Refactors keep results bit-identical: reference runs hash to what was recorded before.

``tests/golden.json`` holds SHA-256 prefixes of each reference run's
``summary.json`` (timing fields removed) and final parameters, recorded with
``python tests/_golden.py record`` before the architecture change, per machine
fingerprint (CPU model, vector extensions, jax version): float results differ
between CPUs, so another machine has nothing to compare against and skips.
"""

import json

import _golden
import pytest

RECORDS = json.loads(_golden.GOLDEN.read_text())


def _expected(name):
    key = _golden.fingerprint()
    if key not in RECORDS or name not in RECORDS[key]:
        pytest.skip(
            f"no golden hashes of {name!r} for this machine ({key}); record them with "
            "`python tests/_golden.py record` on the commit before a change"
        )
    return RECORDS[key][name]


@pytest.mark.parametrize("name", _golden.FAST)
def test_reference_run_is_bit_identical(name, tmp_path):
    expected = _expected(name)
    assert _golden.run(name, tmp_path) == expected


@pytest.mark.slow
def test_default_digits_gan_is_bit_identical(tmp_path):
    expected = _expected("digits_gan")
    assert _golden.run("digits_gan", tmp_path) == expected
