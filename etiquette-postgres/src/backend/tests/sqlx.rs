//! Adding jobs within an application's sqlx transaction (feature `sqlx`).

use std::time::{Duration, SystemTime};

use sqlx::Connection as _;

use super::{Tally, one_process, outcome, runs, within};
use crate::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_in_a_sqlx_transaction_exists_if_and_only_if_it_commits() {
    let (server, queue) = one_process().await;
    let decorum = queue.decorum();
    let url = server.url("postgres");
    let connecting = within("sqlx connecting", sqlx::PgConnection::connect(&url));
    let mut connection = connecting.await.expect("sqlx connects");

    let mut rolled_back = connection.begin().await.expect("begin");
    let ghost = decorum.job(Tally::new("sqlx-ghost"));
    let ghost = Postgres::add_in_sqlx(&mut rolled_back, ghost).await;
    let ghost = ghost.expect("added within the transaction");
    rolled_back.rollback().await.expect("rollback");
    assert!(decorum.find(ghost.id()).await.expect("asked").is_none());

    let mut committed = connection.begin().await.expect("begin");
    // A start time passed: due at once (sqlx sends it as milliseconds).
    let a_second_ago = SystemTime::now() - Duration::from_secs(1);
    let real = decorum.job(Tally::new("sqlx-real")).run_at(a_second_ago);
    let real = Postgres::add_in_sqlx(&mut committed, real).await;
    let real = real.expect("added within the transaction");
    committed.commit().await.expect("commit");
    outcome("the committed job's outcome", &real)
        .await
        .expect("succeeded");
    assert_eq!(runs("sqlx-real"), [1]);
    assert!(runs("sqlx-ghost").is_empty());
}
