"""``python -m rayjoule.profile``: profiling runs per stage for the energy models.

The command lives in :mod:`rayjoule.cli.profile` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.profile import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
