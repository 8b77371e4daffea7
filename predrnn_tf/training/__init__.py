"""Training: ``train_and_evaluate(config, workdir)``, schedules, fault tolerance, reporting.

Owns the training loop, the optimizer, the sampling schedules, the work-directory lock and
the loss log. May import config, errors, files, checkpoints, models, data and evaluation
(its test pass reuses evaluation's metrics); never cli/ or absl flags.
"""

# The public modules, which tools may import; listed, not imported here (no import circle).
__all__ = ["cpu_features", "distribution", "fault_tolerance", "loop", "schedules", "trainer"]
