//! The insert through sqlx (feature `sqlx`): a job added within the
//! application's sqlx transaction exists if and only if it commits.

use std::time::UNIX_EPOCH;

use sqlx::PgConnection;

use super::{Inserted, NewJob, Statements, millis};

/// [`insert`](super::insert), through a sqlx connection or transaction.
pub(crate) async fn insert_sqlx(
    connection: &mut PgConnection,
    statements: &Statements,
    job: &NewJob<'_>,
) -> Result<Inserted, sqlx::Error> {
    // Milliseconds since 1970: sqlx has no type for `SystemTime` without
    // chrono or time.
    let run_at = job.run_at.map(|at| match at.duration_since(UNIX_EPOCH) {
        Ok(since) => millis(since),
        Err(before) => -millis(before.duration()),
    });
    loop {
        let statement = if job.notify {
            &statements.insert_and_notify_ms
        } else {
            &statements.insert_ms
        };
        let mut query = sqlx::query_scalar::<_, i64>(statement)
            .bind(job.queue)
            .bind(job.name)
            .bind(job.args)
            .bind(job.priority)
            .bind(run_at)
            .bind(job.max_attempts)
            .bind(job.unique_key)
            .bind(job.retry)
            .bind(job.timeout.map(millis))
            .bind(job.delay.map(millis));
        if job.notify {
            query = query.bind(&statements.channel);
        }
        if let Some(id) = query.fetch_optional(&mut *connection).await? {
            return Ok(Inserted::New(id));
        }
        // A live job holds the key; it may finish before we look: try again.
        let live = sqlx::query_scalar::<_, i64>(&statements.live_with_key)
            .bind(job.queue)
            .bind(job.unique_key)
            .fetch_optional(&mut *connection)
            .await?;
        if let Some(id) = live {
            return Ok(Inserted::Duplicate(id));
        }
    }
}

/// Whether the server refused a value of the statement (see
/// [`refused_value`](crate::connection::refused_value)).
pub(crate) fn refused_value_sqlx(error: &sqlx::Error) -> bool {
    let code = match error {
        sqlx::Error::Database(error) => error.code(),
        _ => None,
    };
    code.is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54")))
}
