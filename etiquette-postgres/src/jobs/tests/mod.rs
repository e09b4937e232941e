//! The statements against a real PostgreSQL server, started per test.

use std::time::Duration;

use crate::test_support::Db;

mod claims;
mod leases;
mod plans;
mod rows;

const LEASE: Duration = Duration::from_secs(30);

async fn state_of(db: &Db, id: i64) -> (String, i32) {
    let row = db
        .client
        .query_one(
            "SELECT state, attempt FROM etiquette.jobs WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
