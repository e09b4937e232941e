-- The jobs table: one row per accepted job, kept after it finished until
-- pruned. `{schema}` is replaced by the quoted schema name.
--
-- A job waits in `available` (due once `run_at` has passed: a job added
-- to run later is `available` with a future `run_at`) or `retrying` (the
-- same, after a failed attempt); a claim moves it to `running` under a
-- lease held by one process (`owner`) until `lease_until`, renewed by that
-- process's heartbeat; it ends `succeeded`, `failed` or `cancelled`.
CREATE TABLE {schema}.jobs (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text        NOT NULL,
    name         text        NOT NULL,
    args         jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'available'
                 CHECK (state IN ('available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    priority     smallint    NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempt      integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    -- The rest of the job's retry policy (backoff, multiplier, cap, jitter,
    -- whether time-outs retry), as etiquette_core::RetryParts, and the time
    -- limit of each attempt: the job runs by them in whichever process
    -- claims it.
    retry        jsonb       NOT NULL DEFAULT '{}',
    timeout_ms   double precision CHECK (timeout_ms >= 0),
    -- Set by a cancel from any process while the job runs: its owner's
    -- next heartbeat cancels the attempt.
    cancel_requested boolean NOT NULL DEFAULT false,
    unique_key   text,
    owner        bigint,
    lease_until  timestamptz,
    -- The last attempt's error. NULL in a failed row whose last attempt
    -- ran past its time limit: a job's own errors are always text, so
    -- none can pass for a time-out.
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK ((state = 'running') = (owner IS NOT NULL AND lease_until IS NOT NULL))
);

-- The claim's index: only waiting rows, in claim order.
CREATE INDEX jobs_waiting ON {schema}.jobs (queue, priority, run_at, id)
    WHERE state IN ('available', 'retrying');

-- The rescue's index: running rows by lease.
CREATE INDEX jobs_leases ON {schema}.jobs (lease_until) WHERE state = 'running';

-- At most one live job per key and queue; a finished job frees its key.
CREATE UNIQUE INDEX jobs_unique_live ON {schema}.jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'retrying');

-- Pruning's index: finished rows by age.
CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- The bounded claim's count: running rows of one queue.
CREATE INDEX jobs_running ON {schema}.jobs (queue) WHERE state = 'running';
