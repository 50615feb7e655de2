"""``python -m rayjoule.tune``: Optuna finds the settings that cost the fewest joules.

The command lives in :mod:`rayjoule.cli.tune` (arguments, one call below, the rendering);
this entry point only maps its outcome to DESIGN.md's exit statuses.
"""

import sys

from rayjoule.cli.tune import main

if __name__ == "__main__":
    from rayjoule.cli.common import run_command

    sys.exit(run_command(main))
