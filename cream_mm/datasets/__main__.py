"""``python -m cream_mm.datasets``: build the embedded sets, summarise."""
import sys

from .prepare import main

sys.exit(main())
