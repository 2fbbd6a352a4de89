"""The run lifecycle, one concern per module:

- build: making runs from a job (`run_build`, the one builder), `run_trigger`, `run_retry`;
- publish: the one door that sends runs to the broker after commit (`runs_publish_on_commit`);
- moves: every state change after birth (start, attempt end, retry, cancel, lost), each a guarded
  update whose sources come from apps.runs.states (`runs_move`);
- hotpath: the two data-modifying SQL statements of the worker's hot path (start, success);
- maintenance: the scheduler's sweeps (lost runs, unpublished runs, retention) and the workers'
  heartbeats they read.
"""
