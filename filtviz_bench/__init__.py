"""filtviz_bench: how fast and how good filter pictures are, measured the same way for every method.

Shared by the speed benchmark (:mod:`filtviz_bench.speed`, ``make bench``) and the quality benchmark
(:mod:`filtviz_bench.quality`, ``make quality``): jobs and FLOP counts (:mod:`~filtviz_bench.jobs`,
:mod:`~filtviz_bench.flops`), the contenders behind one calling convention (:mod:`~filtviz_bench.adapters`,
:mod:`~filtviz_bench.lucent_runner`), round-robin timing and the range rule for speed targets
(:mod:`~filtviz_bench.timing`), facts about the machine (:mod:`~filtviz_bench.machine`).

    python -m filtviz_bench speed --job cpu --out benchmarks/cpu
    python -m filtviz_bench quality --out benchmarks/quality
"""
