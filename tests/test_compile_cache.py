"""The study's persistent compilation cache (``xla.use_compilation_cache``), in fresh processes."""

import os
import pathlib
import shutil
import subprocess
import sys

import jax

from regan_jax import xla

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Compiles one tiny program (far below JAX's default 1 s minimum compile time) and prints
# the cache directory in use and how many persistent-cache hits the process saw.
PROGRAM = """
import sys
import jax
from regan_jax import xla
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None
)
used = xla.use_compilation_cache(sys.argv[1])
print(used, float(jax.jit(lambda x: x * 3.0 + 1.0)(2.0)), len(hits))
"""


def run(directory, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    environ.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(directory)],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


def test_a_second_process_loads_the_small_program_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    assert run(cache) == [str(cache), "7.0", "0"]
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "the tiny program was not written to the cache"
    assert run(cache) == [str(cache), "7.0", "1"]
    assert sorted(p.name for p in cache.iterdir()) == entries  # loaded, not written again
    # A copy elsewhere (a study directory moved or copied) hits too: no path in the keys.
    copy = tmp_path / "elsewhere" / "cache"
    shutil.copytree(cache, copy)
    assert run(copy) == [str(copy), "7.0", "1"]
    assert sorted(p.name for p in copy.iterdir()) == entries


def test_a_process_given_a_cache_keeps_it(tmp_path):
    given = tmp_path / "given"
    assert run(tmp_path / "ignored", JAX_COMPILATION_CACHE_DIR=str(given))[0] == str(given)
    assert not (tmp_path / "ignored").exists()
    # This test process too: the suite's cache (tests/conftest.py) stays in use.
    current = jax.config.jax_compilation_cache_dir
    assert current and xla.use_compilation_cache(tmp_path / "other") == current
    assert jax.config.jax_compilation_cache_dir == current
