"""``python -m rayjoule.export --db PATH --out DIR``: the results store as Parquet.

The command lives in :mod:`rayjoule.cli.export` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.export import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
