"""``python -m filtviz_bench {speed,quality,maco,examples} [options]``: the benchmarks behind one entry point."""

import sys

USAGE = "usage: python -m filtviz_bench {speed,quality,maco,examples} [options]   (--help after the name: its options)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "speed":
        from filtviz_bench.speed import cli
    elif name == "quality":
        from filtviz_bench.quality import cli
    elif name == "maco":
        from filtviz_bench.maco_bench import cli
    elif name == "examples":
        from filtviz_bench.examples import cli
    else:
        print(
            f"python -m filtviz_bench: error: unknown benchmark {name!r}; valid: speed, quality, maco, examples",
            file=sys.stderr,
        )
        return 2
    return cli(rest, prog=f"python -m filtviz_bench {name}")


if __name__ == "__main__":
    sys.exit(main())
