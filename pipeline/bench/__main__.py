"""`python -m pipeline.bench`: the benchmark with its extra knobs (see pipeline/bench/__init__.py)."""
from . import main, parser

main(parser().parse_args())
