"""One place for looking a config name up in a registry, with the error users see."""

from collections.abc import Iterable, Mapping
from typing import Any


def check_name(what: str, name: Any, valid: Iterable[str], hint: str = "") -> None:
    """Raises ``ValueError('unknown <what> <name>; expected one of [...]<hint>')`` if ``name`` is not valid."""
    valid = sorted(valid)
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; expected one of {valid}{hint}")


def choose(what: str, name: Any, registry: Mapping[str, Any]) -> Any:
    """``registry[name]``; an unknown name raises ``ValueError`` listing the valid ones."""
    check_name(what, name, registry)
    return registry[name]
