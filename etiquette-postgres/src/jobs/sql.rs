//! The statements of a job's life, as SQL text with the schema's name in
//! place: prepared by the server on first use, so that building the crate
//! needs no database.

use crate::Schema;

/// The state an outcome moves a job to (`done.state`), unless a cancel
/// was asked for while it ran.
const NEXT: &str = "(CASE WHEN job.cancel_requested AND done.state IN ('retrying', 'available')
                     THEN 'cancelled' ELSE done.state END)";

/// The states in which a job still holds its unique key.
const LIVE: &str = "('available', 'running', 'retrying')";

/// Payloads announced on channel `$1`, in order, in one statement.
pub(crate) const NOTIFY_MANY: &str =
    "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload";

/// See [`Statements::insert_many`]: `$1` the queue, `$2` to `$10` the
/// jobs' columns as arrays, `$11` the channel or NULL.
fn insert_many(jobs: &str) -> String {
    // Ids drawn in the input's order before the insert, so that each job
    // is answered with its own, inserted or not. The sequence is looked up
    // once, in a sub-select (an init plan): as the argument of `nextval`
    // itself it was looked up again for every row, 7 µs each, a third of
    // the statement's time for large batches.
    format!(
        "WITH input AS (
             SELECT * FROM unnest($2::text[], $3::jsonb[], $4::int2[], $5::timestamptz[],
                                  $6::int4[], $7::text[], $8::jsonb[], $9::float8[], $10::float8[])
                 WITH ORDINALITY AS input(name, args, priority, run_at, max_attempts,
                                          unique_key, retry, timeout_ms, delay_ms, ord)
         ),
         numbered AS MATERIALIZED (
             SELECT input.*, nextval((SELECT pg_get_serial_sequence('{jobs}', 'id')::regclass)) AS id
             FROM input ORDER BY ord
         ),
         inserted AS (
             INSERT INTO {jobs} (id, queue, name, args, priority, run_at, max_attempts,
                                 unique_key, retry, timeout_ms)
             OVERRIDING SYSTEM VALUE
             SELECT id, $1, name, args, priority,
                    coalesce(run_at, now() + coalesce(delay_ms, 0) * interval '1 millisecond'),
                    max_attempts, unique_key, retry, timeout_ms
             FROM numbered ORDER BY ord
             ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE}
             DO NOTHING
             RETURNING id
         ),
         notified AS (
             SELECT pg_notify($11, $1) FROM (SELECT 1 FROM inserted LIMIT 1) AS some_job
             WHERE $11 IS NOT NULL
         )
         SELECT numbered.id, inserted.id IS NOT NULL, (SELECT count(*) FROM notified)
         FROM numbered LEFT JOIN inserted USING (id)
         ORDER BY numbered.ord"
    )
}

/// The statements, with the schema's name in place.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The channel adds are announced on: `<schema>.jobs`.
    pub(crate) channel: String,
    /// The channel task events are announced on: `<schema>.events`.
    pub(crate) events_channel: String,
    /// A job, unless a live one holds its unique key.
    pub(super) insert: String,
    /// The insert, announcing the job on `channel` in the same transaction:
    /// listeners hear of it once it is visible.
    pub(super) insert_and_notify: String,
    /// Many jobs of one queue in one statement (one commit), each answered
    /// with its id and whether it was inserted (not held off by a live job
    /// with its unique key); announced once on `channel` if any was.
    pub(super) insert_many: String,
    /// `insert` and `insert_and_notify` taking the start time as
    /// milliseconds since 1970 (a client without a timestamp type: sqlx
    /// without chrono or time).
    #[cfg(feature = "sqlx")]
    pub(super) insert_ms: String,
    #[cfg(feature = "sqlx")]
    pub(super) insert_and_notify_ms: String,
    /// The live job holding a unique key.
    pub(super) live_with_key: String,
    /// Due jobs, each for one attempt under a lease.
    pub(super) claim: String,
    /// The claim, within a bound on running jobs across processes.
    pub(super) claim_bounded: String,
    /// An owner's leases renewed, each with whether a cancel asked it to
    /// stop.
    pub(super) heartbeat: String,
    /// An attempt ended for good, fenced.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) finish: String,
    /// An attempt failed, the job to wait its backoff, fenced.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) retry: String,
    /// `finish` and `retry` for many jobs of one owner in one statement.
    pub(crate) report_many: String,
    /// Expired leases rescued.
    pub(super) rescue: String,
    /// A job's state, for its status.
    pub(super) status: String,
    /// The states of many jobs, each with its id.
    pub(super) statuses: String,
    /// A waiting job cancelled.
    pub(super) cancel_waiting: String,
    /// A running job asked to stop, by its owner's next heartbeat.
    pub(super) request_cancel: String,
    /// A failed or cancelled job back to waiting, due now, for a retry by
    /// hand; `..._and_notify` announces it on `channel` and its `Queued`
    /// event on `events_channel`.
    pub(super) retry_by_hand: String,
    pub(super) retry_by_hand_and_notify: String,
    /// The live job holding a job's unique key, other than that job.
    pub(super) holder_of_key: String,
    /// A queue's waiting, scheduled, running and retrying rows, each
    /// counted to a cap.
    pub(super) stored_jobs: String,
    /// A batch of rows finished before the retention.
    pub(super) prune: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let jobs = format!("{}.jobs", schema.quoted());
        let insert = format!(
            "INSERT INTO {jobs}
                 (queue, name, args, priority, run_at, max_attempts, unique_key, retry, timeout_ms)
             VALUES ($1, $2, $3, $4,
                     coalesce($5, now() + coalesce($10::float8, 0) * interval '1 millisecond'),
                     $6, $7, $8, $9)
             ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE}
             DO NOTHING
             RETURNING id"
        );
        #[cfg(feature = "sqlx")]
        let insert_ms = insert.replacen(
            "coalesce($5,",
            "coalesce(to_timestamp($5::float8 / 1000),",
            1,
        );
        Self {
            #[cfg(feature = "sqlx")]
            insert_and_notify_ms: format!(
                "WITH inserted AS ({insert_ms}) SELECT id, pg_notify($11, $1) FROM inserted"
            ),
            #[cfg(feature = "sqlx")]
            insert_ms,
            channel: format!("{schema}.jobs"),
            events_channel: format!("{schema}.events"),
            insert_and_notify: format!(
                "WITH inserted AS ({insert}) SELECT id, pg_notify($11, $1) FROM inserted"
            ),
            insert,
            insert_many: insert_many(&jobs),
            live_with_key: format!(
                "SELECT id FROM {jobs} WHERE queue = $1 AND unique_key = $2 AND state IN {LIVE}"
            ),
            claim: claim(&jobs, "$2"),
            // The room left under the bound: expired leases do not count.
            claim_bounded: claim(
                &jobs,
                &format!(
                    "greatest(0, least($2, $6 - (
                         SELECT count(*) FROM {jobs}
                         WHERE queue = $1 AND state = 'running' AND lease_until > now()
                     )))"
                ),
            ),
            // This statement and the outcomes below fence on `owner`, which
            // only a running job has (`0002_owner_only_while_running.sql`),
            // never on `state = 'running'`: named, it lets the planner pick
            // a partial index of running rows whenever the statistics were
            // gathered while nothing ran (an ANALYZE of an idle queue or
            // after a bulk add), and walk it, dead entries and all, at
            // every call: 18k jobs/s fell to 1.3k so (`jobs/tests/plans.rs`).
            heartbeat: format!(
                "UPDATE {jobs} SET lease_until = now() + $2 * interval '1 millisecond'
                 WHERE owner = $1 AND id = ANY($3)
                 RETURNING id, attempt, cancel_requested"
            ),
            finish: format!(
                "UPDATE {jobs}
                 SET state = $4, error = $5, finished_at = now(), owner = NULL, lease_until = NULL
                 WHERE id = $1 AND owner = $2 AND attempt = $3"
            ),
            retry: format!(
                "UPDATE {jobs}
                 SET state = 'retrying', error = $4,
                     run_at = now() + $5 * interval '1 millisecond',
                     owner = NULL, lease_until = NULL
                 WHERE id = $1 AND owner = $2 AND attempt = $3"
            ),
            // `available` hands the job back unfinished: the attempt it
            // claimed does not count, and any process may claim it at once.
            // A cancel asked for while the attempt ran wins over a retry
            // or a hand-back: the job does not run again. An end with no
            // error keeps the last one, but a failure writes its own: none
            // marks a time-out (see `backend/status.rs`).
            report_many: format!(
                "UPDATE {jobs} AS job
                 SET state = {NEXT},
                     error = CASE WHEN done.state = 'failed'
                                  THEN done.error ELSE coalesce(done.error, job.error) END,
                     attempt = CASE WHEN {NEXT} = 'available'
                                    THEN job.attempt - 1 ELSE job.attempt END,
                     run_at = CASE WHEN {NEXT} IN ('retrying', 'available')
                                   THEN now() + done.delay_ms * interval '1 millisecond'
                                   ELSE job.run_at END,
                     finished_at = CASE WHEN {NEXT} IN ('retrying', 'available')
                                        THEN NULL ELSE now() END,
                     owner = NULL, lease_until = NULL, cancel_requested = false
                 FROM unnest($2::bigint[], $3::integer[], $4::text[], $5::text[], $6::float8[])
                     AS done(id, attempt, state, error, delay_ms)
                 -- `= ANY`: a plan that looks the ids up, whatever it
                 -- guesses of the array's length (see `claim`).
                 WHERE job.id = done.id AND job.id = ANY($2)
                     AND job.owner = $1 AND job.attempt = done.attempt
                 RETURNING job.id, job.attempt, job.state = 'cancelled'"
            ),
            rescue: format!(
                "UPDATE {jobs}
                 SET state = CASE WHEN cancel_requested THEN 'cancelled'
                                  WHEN attempt >= max_attempts THEN 'failed'
                                  ELSE 'retrying' END,
                     finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts
                                        THEN now() END,
                     cancel_requested = false,
                     error = 'lease expired: the process running it stopped heartbeating',
                     run_at = now(), owner = NULL, lease_until = NULL
                 WHERE state = 'running' AND lease_until <= now()"
            ),
            status: format!(
                "SELECT state, attempt, run_at, error,
                        greatest(0, extract(epoch FROM run_at - now()) * 1000)::float8,
                        timeout_ms, run_at > now(), name
                 FROM {jobs} WHERE id = $1"
            ),
            statuses: format!(
                "SELECT state, attempt, run_at, error,
                        greatest(0, extract(epoch FROM run_at - now()) * 1000)::float8,
                        timeout_ms, run_at > now(), name, id
                 FROM {jobs} WHERE id = ANY($1)"
            ),
            cancel_waiting: format!(
                "UPDATE {jobs} SET state = 'cancelled', finished_at = now()
                 WHERE id = $1 AND state IN ('available', 'retrying')"
            ),
            request_cancel: format!(
                "UPDATE {jobs} SET cancel_requested = true WHERE id = $1 AND state = 'running'"
            ),
            retry_by_hand: retry_by_hand(&jobs),
            // The `queued` event's payload (`$4`) is made before the row is
            // read: the job's name (`j`, see `backend/events.rs`) is added
            // here, from the row.
            retry_by_hand_and_notify: format!(
                "WITH retried AS ({}) SELECT id, name, pg_notify($2, queue),
                     pg_notify($3, ($4::text::jsonb || jsonb_build_object('j', name))::text)
                 FROM retried",
                retry_by_hand(&jobs)
            ),
            // Each count along a partial index of live rows, stopped at
            // the cap: never a scan of the finished rows.
            stored_jobs: format!(
                "SELECT
                   (SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE queue = $1
                       AND state = 'available' AND run_at <= now() LIMIT $2) AS due),
                   (SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE queue = $1
                       AND state = 'available' AND run_at > now() LIMIT $2) AS later),
                   (SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE queue = $1
                       AND state = 'running' LIMIT $2) AS running),
                   (SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE queue = $1
                       AND state = 'retrying' LIMIT $2) AS retrying)"
            ),
            holder_of_key: format!(
                "SELECT other.id FROM {jobs} AS job
                 JOIN {jobs} AS other
                     ON other.queue = job.queue AND other.unique_key = job.unique_key
                 WHERE job.id = $1 AND other.id <> job.id AND other.state IN {LIVE}"
            ),
            // The ids as an array, as in the claim (see `claim`).
            prune: format!(
                "DELETE FROM {jobs} WHERE id = ANY(ARRAY(
                     SELECT id FROM {jobs}
                     WHERE finished_at < now() - $1 * interval '1 millisecond'
                     ORDER BY finished_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ))"
            ),
        }
    }
}

/// A retry by hand of job `$1`, fenced by its state: only a failed or
/// cancelled job goes back to waiting (`available`, due now), its attempts
/// counted on (the claim makes the next n + 1), with one more allowed if
/// it had used them up, as Oban and River do. Its last error stays until
/// its next attempt writes its own (no waiting state shows it). Into a live
/// state, it takes its unique key back: the unique index refuses it if a
/// live job holds the key.
fn retry_by_hand(jobs: &str) -> String {
    format!(
        "UPDATE {jobs}
         SET state = 'available', run_at = now(), finished_at = NULL,
             max_attempts = greatest(max_attempts, attempt + 1),
             cancel_requested = false
         WHERE id = $1 AND state IN ('failed', 'cancelled')
         RETURNING id, queue, name"
    )
}

/// The claim: the due waiting jobs of queue `$1` whose kind is one of
/// `$5` (the kinds the claiming process can run), at most `limit`, each
/// moved to `running` for owner `$3` under a lease of `$4` ms, returned in
/// claim order.
///
/// A job of a kind the process does not know stays waiting for one that
/// does, as graphile-worker's claim does: during a rolling deploy, an old
/// worker must not take (and fail) a job only the new code can run.
///
/// The ids chosen are an array the update looks up in the primary key.
/// Joined to the table instead (`UPDATE … FROM next`), the generic plan a
/// prepared statement settles on, which cannot know the limit, merged
/// them with a scan of the whole primary key: every finished row read at
/// every claim.
fn claim(jobs: &str, limit: &str) -> String {
    format!(
        "WITH claimed AS (
             UPDATE {jobs} AS job
             SET state = 'running', attempt = job.attempt + 1, owner = $3,
                 lease_until = now() + $4 * interval '1 millisecond'
             WHERE job.id = ANY(ARRAY(
                 SELECT id FROM {jobs}
                 WHERE queue = $1 AND state IN ('available', 'retrying') AND run_at <= now()
                     AND name = ANY($5)
                 ORDER BY priority, run_at, id
                 LIMIT {limit}
                 FOR UPDATE SKIP LOCKED
             ))
             RETURNING job.id, job.name, job.args, job.attempt, job.max_attempts,
                       job.priority, job.timeout_ms, job.retry, job.run_at
         )
         SELECT id, name, args, attempt, max_attempts, priority, timeout_ms, retry
         FROM claimed ORDER BY priority, run_at, id"
    )
}
