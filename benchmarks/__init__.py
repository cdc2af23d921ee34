"""tactor's benchmarks: every figure beside a baseline measured in the same run, as a ratio.

Run them with ``./dev bench`` (``--quick`` for a smoke run, ``--only codec``
for one row). Results go to ``benchmarks/results/latest.json`` and
``benchmarks/results/latest.md``.
"""
