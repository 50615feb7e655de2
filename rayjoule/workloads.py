"""``python -m rayjoule.workloads``: list the workloads, or run one serially as a reference.

The command lives in :mod:`rayjoule.cli.workloads` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.workloads import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
