"""Reports across results stores: history (where does a job cost least, how does a run
compare with earlier ones) and the Parquet export (:mod:`.parquet_export`, imported on its
own: it needs pyarrow). They read stores only through :class:`~rayjoule.runs.store.Store`.
"""

from rayjoule.runs.reports.across_stores import (
    SETTINGS,
    History,
    HostInfo,
    StoredRun,
    load,
    size_key,
)
from rayjoule.runs.reports.host_ranking import (
    GROUPINGS,
    KINDS,
    MODELLED_NOTE,
    HostBest,
    JobRanking,
    rank_hosts,
)
from rayjoule.runs.reports.run_baseline import (
    Baseline,
    RunComparison,
    comparable,
    compare_run,
    spread,
)

__all__ = ["GROUPINGS", "KINDS", "MODELLED_NOTE", "SETTINGS", "Baseline", "History",
           "HostBest", "HostInfo", "JobRanking", "RunComparison", "StoredRun", "comparable",
           "compare_run", "load", "rank_hosts", "size_key", "spread"]
