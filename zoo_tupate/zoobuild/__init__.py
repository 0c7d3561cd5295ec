"""``zoo build``: pull what the Hub has, tune (with the probe recipe), index and push what is missing.

- :mod:`zoo_tupate.zoobuild.plan`: the build's items (one per catalog task and method) and what each needs.
- :mod:`zoo_tupate.zoobuild.tunejob`: the job a worker runs: tune one probe, hand back its files.
- :mod:`zoo_tupate.zoobuild.run`: running a plan on an executor, resumably; the summary.
- :mod:`zoo_tupate.zoobuild.executors`: the executors that run jobs (local processes or Ray), registered by name.

Layer 9. May import every layer up to ``answer``.
"""
