"""``python -m rayjoule.history``: runs across stores and machines, ranked by joules.

The command lives in :mod:`rayjoule.cli.history` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.history import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
