"""One experiment per file; ``get_config(arg)`` returns its locked ConfigDict.

``arg`` is the text after ``:`` on the command line (``digits_gan.py:smoke``),
see :func:`regan_jax.config.with_options`.
"""
