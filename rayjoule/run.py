"""``python -m rayjoule.run``: one metered run of a workload on one framework.

The command lives in :mod:`rayjoule.cli.run` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.run import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
