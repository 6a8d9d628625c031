"""Model monitoring: drift of features, predictions and tiers against each champion's training
reference, real quality once outcomes are known, grades and alerts (Evidently 0.7).

Pure measurement over frames (`drift`, `quality`, `health`), the reference read back from MLflow
(`reference`), the thresholds (`thresholds`), the overview page (`page`) and the Evidently workspace
(`workspace`). `pipelines/monitor.py` loads the snapshots and writes the results.
"""
