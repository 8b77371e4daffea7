"""Training: ``train_and_evaluate(config, workdir)``, schedules, fault tolerance, reporting.

Owns the training loop, the optimizer, the sampling schedules, the work-directory lock and
the loss log. May import config, errors, files, checkpoints, models, data and evaluation
(its test pass reuses evaluation's metrics); never cli/ or absl flags.
"""
