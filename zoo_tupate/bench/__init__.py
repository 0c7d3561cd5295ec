"""Prediction quality: measure intermediate-task transfer, score the rankers, evaluate them against it.

- :mod:`zoo_tupate.bench.transfer`: the resumable transfer run (``zoo-tupate bench transfer``).
- :mod:`zoo_tupate.bench.finetune`: the fine-tuning loops it uses (full model or LoRA adapter).
- :mod:`zoo_tupate.bench.predict`: every ranking method's score for every (target, source) pair.
- :mod:`zoo_tupate.bench.baselines`: DataSize, TextEmb, TaskEmb and Random.
- :mod:`zoo_tupate.bench.config`: what defines a run, and its data loaded once.

Scoring rankings against the measured matrix lives a layer below, in :mod:`zoo_tupate.ranking.evaluate`.
Layer 10. May import every layer up to ``build`` (its executors).
"""
