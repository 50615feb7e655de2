"""``python -m rayjoule.meters``: which energy meters work on this host, and why the others don't.

The command lives in :mod:`rayjoule.cli.detect_meters` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.detect_meters import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
