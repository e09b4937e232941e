-- Only a running job has an owner: each end, retry, hand-back and rescue
-- clears it. The statements that look a running job up by id (outcomes,
-- heartbeats) fence on `owner = $1` alone and leave `state = 'running'`
-- out: named, it lets the planner walk a partial index of running rows,
-- dead entries and all, whenever the statistics were gathered while
-- nothing ran (see `jobs/sql.rs`). This makes the fence as strict as the
-- state's.
ALTER TABLE {schema}.jobs ADD CONSTRAINT jobs_owned_only_while_running
    CHECK (owner IS NULL OR state = 'running');
