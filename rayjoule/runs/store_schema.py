"""The results store's schema: its tables, its version and how an older one is upgraded.

Only :mod:`rayjoule.runs.store` uses these: every read and write of a store goes through
:class:`~rayjoule.runs.store.Store`, so the schema is the store's to change.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of a rayjoule store ("RYJL")
APPLICATION_ID = 0x52594A4C

_TASKS_TABLE = """CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task_id INTEGER NOT NULL,
    node_id TEXT, host TEXT, pid INTEGER,
    stage TEXT NOT NULL DEFAULT 'map',
    start REAL, "end" REAL, cpu_s REAL, slot_cpus REAL,
    static_j REAL, dynamic_j REAL, energy_j REAL,
    extra_json TEXT,
    PRIMARY KEY (run_id, stage, task_id)
);"""

_SCHEMA_TEMPLATE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    parent_id TEXT,
    created REAL NOT NULL,
    workload TEXT NOT NULL,
    framework TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    wall_s REAL,
    total_j REAL,
    static_j REAL,
    dynamic_j REAL,
    overhead_j REAL,
    complete INTEGER,
    meter TEXT,
    kind TEXT,
    study TEXT,
    trial INTEGER,
    config_json TEXT NOT NULL,
    result_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE INDEX IF NOT EXISTS runs_study ON runs(study, trial);
{TASKS_TABLE}
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    host TEXT NOT NULL, meter TEXT NOT NULL, kind TEXT NOT NULL,
    t REAL NOT NULL, domain TEXT NOT NULL, joules REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id);
"""

SCHEMA = _SCHEMA_TEMPLATE.replace("{TASKS_TABLE}", _TASKS_TABLE)

TASK_COLUMNS = ("task_id", "node_id", "host", "pid", "stage", "start", "end", "cpu_s",
                "slot_cpus", "static_j", "dynamic_j", "energy_j")

#: a version-1 store (rayjoule 0.1) brought to this schema, keeping every row
MIGRATE_V1 = f"""
BEGIN IMMEDIATE;
ALTER TABLE runs ADD COLUMN overhead_j REAL;
ALTER TABLE runs ADD COLUMN complete INTEGER;
ALTER TABLE tasks RENAME TO tasks_v1;
{_TASKS_TABLE};
INSERT INTO tasks (run_id, task_id, node_id, host, pid, start, "end", cpu_s,
                   dynamic_j, energy_j)
    SELECT run_id, task_id, node_id, host, pid, start, "end", cpu_s, energy_j,
           energy_j FROM tasks_v1;
DROP TABLE tasks_v1;
UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema_version';
COMMIT;
"""
