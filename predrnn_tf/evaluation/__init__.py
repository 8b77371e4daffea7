"""Evaluation: the paper's metrics, the one scoring engine, baselines, LPIPS, charts and plots.

``scores`` is the one engine of contingency scores and the FSS (pysteps' definitions, pooled
per lead time); ``metrics`` keeps the paper metrics (MSE/MAE, PSNR, SSIM, LPIPS); ``results``
is the one ``metrics.json`` writer; ``run.evaluate`` is ``predrnn-evaluate`` as a library call.

May import config, errors, files, units, checkpoints, models and data; never training,
serving, cli/ or absl flags.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["baselines", "charts", "ensemble_selection", "evaluator", "lpips", "metrics", "plots",
           "postprocessing_selection", "probabilistic", "pysteps_settings", "results", "run",
           "scores", "skill_goals", "steps_baseline"]
