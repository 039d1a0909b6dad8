"""A picture of a plan: which layers sit on which device (top), and each
device's memory as stacked bars of weights, KV cache and compute against its
limit (bottom). Needs matplotlib (pip install 'hetinfer[plot]')."""

from __future__ import annotations

import os

from .planner import Plan

_KINDS = (("weights", "#4C72B0"), ("kv", "#DD8452"), ("compute", "#55A868"))


def save_plot(plan: Plan, path: str | os.PathLike) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'hetinfer[plot]'") from None
    gib = 2**30
    n_layer = max((d.layers[1] for d in plan.devices), default=0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 2.2 + 0.9 * len(plan.devices)),
                                      gridspec_kw={"height_ratios": [1, max(1, len(plan.devices))]})
    colours = plt.get_cmap("tab10")
    for i, d in enumerate(plan.devices):
        if d.n_layers:
            top.barh(0, d.n_layers, left=d.layers[0], color=colours(i), edgecolor="white")
            top.text(d.layers[0] + d.n_layers / 2, 0, f"{d.device}\n{d.layers[0]}-{d.layers[1] - 1}",
                     ha="center", va="center", fontsize=8, color="white")
    top.set_xlim(0, max(n_layer, 1))
    top.set_yticks([])
    top.set_xlabel("decoder layer")
    top.set_title(f"{plan.model}: split={plan.split}, n_ctx={plan.n_ctx} x {plan.n_parallel}, "
                  f"KV {plan.cache_type_k}/{plan.cache_type_v}", fontsize=9)
    rows = range(len(plan.devices))
    left = [0.0] * len(plan.devices)
    for kind, colour in _KINDS:
        values = [getattr(d, kind) / gib for d in plan.devices]
        bottom.barh(rows, values, left=left, color=colour, label=kind)
        left = [a + b for a, b in zip(left, values)]
    for i, d in enumerate(plan.devices):
        bottom.plot([d.limit / gib] * 2, [i - 0.4, i + 0.4], color="black" if d.fits else "red", linewidth=2)
    bottom.set_yticks(list(rows), [d.device + ("" if d.fits else " (does not fit)") for d in plan.devices])
    bottom.invert_yaxis()
    bottom.set_xlabel("GiB (black line: the device's limit)")
    bottom.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
