"""A hand-built ``results.csv`` row of a study run, shared by the tests that read claims from rows."""


def study_row(name, penalty, target, strength, seed, **fields):
    """The row of ``name``'s run of ``penalty`` on ``target`` at ``strength`` (raw = effective)
    with ``seed``; ``fields`` add scores or override a key (e.g. ``config.steps``)."""
    return {
        "config.name": name,
        "penalty": penalty,
        "target": target,
        "value": strength,
        "effective_strength": strength,
        "regulariser": "none",
        "seed": seed,
        "run": f"{name}/{penalty}-{target}-{strength}-seed{seed}",
        "diverged": False,
        "config.penalty.g.kind": "none",
        "config.penalty.d.kind": "none",
        **fields,
    }
