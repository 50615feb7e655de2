"""``python -m rayjoule.predict``: the least-energy settings per stage, predicted from profiles.

The command lives in :mod:`rayjoule.cli.predict` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.predict import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
