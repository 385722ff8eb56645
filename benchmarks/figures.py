"""The machine-readable figures of one benchmark run (``--json PATH``).

Every benchmark script collects its figures with :class:`Figures` and, given
``--json PATH``, writes them there as ``{"figures": {key: {"value",
"label", "unit"}}, "info": {...}}``; ``run_all.py`` reads these files
(never the printed prose) and aggregates the runs into
``docs/benchmarks.md``.
"""
import json
import math


class Figures:
    """Named figures (value, label, unit) plus free-form run info."""

    def __init__(self):
        self.figures: dict = {}
        self.info: dict = {}

    def add(self, key: str, value, label: str, unit: str = ''):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f'figure {key!r} is not finite: {value}')
        self.figures[key] = dict(value=value, label=label, unit=unit)
        return value

    def dump(self, path: str | None):
        if path:
            with open(path, 'w') as f:
                json.dump(dict(figures=self.figures, info=self.info), f,
                          indent=1)


def add_json_arg(parser):
    parser.add_argument('--json', metavar='PATH',
                        help='also write the figures of this run to PATH '
                        '(read by benchmarks/run_all.py)')
