"""``python -m rayjoule.compare``: native vs Ray vs Lithops — the framework's own energy.

The command lives in :mod:`rayjoule.cli.compare` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.compare import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
