"""How far two ``predict`` answers are apart: the largest probability change and the decisions that differ."""


def attribute_differences(a: dict, b: dict) -> tuple[float, int, int]:
    """``(largest change of a probability/confidence/value/100, decisions that differ, decisions)`` between two
    ``attributes`` dicts (``present``, ``label`` and ``abstain`` are the decisions)."""
    dp, changed, total = 0.0, 0, 0
    for name, e in a.items():
        f = b[name]
        for key in ("probability", "confidence"):
            if key in e:
                dp = max(dp, abs(e[key] - f[key]))
        for key, p in e.get("probabilities", {}).items():
            dp = max(dp, abs(p - f["probabilities"][key]))
        if "value" in e:
            dp = max(dp, abs(e["value"] - f["value"]) / 100)
        for key in ("present", "label", "abstain"):
            if key in e:
                total += 1
                changed += e[key] != f[key]
    return dp, changed, total


def results_differences(a: list, b: list) -> tuple[float, int, int]:
    """``attribute_differences`` summed over two lists of results (max of the changes, sums of the counts)."""
    parts = [attribute_differences(x["attributes"], y["attributes"]) for x, y in zip(a, b)]
    return max(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)
