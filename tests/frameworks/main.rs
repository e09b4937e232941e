//! One behaviour suite, written once in `suite.rs` and stamped onto each
//! framework by `stamp!`: in-process through each framework's own test
//! harness, plus end-to-end runs over a real socket, whose shared steps
//! are in `socket.rs`, and the dashboard in headless Chromium
//! (`browser/`).

mod actix;
mod axum;
mod browser;
mod poem;
mod socket;
mod suite;

/// Stamps every suite test onto one framework, under that framework's test
/// attribute.
macro_rules! stamp {
    ($framework:ty, #[$test:meta]) => {
        // The cases every backend must pass, once per backend: a new
        // backend is one more line here.
        crate::stamp_on_backend!(on_memory, $framework, suite::InMemory, #[$test]);
        crate::stamp_on_backend!(on_postgres, $framework, suite::OnPostgres, #[$test]);

        // The in-memory queue's own cases: closure tasks, its stats and
        // its events.
        mod suite_tests {
            use crate::suite;

            #[$test]
            async fn race_is_exact_at_limit_1() {
                suite::race_is_exact_at_limit_1::<$framework>().await;
            }

            #[$test]
            async fn race_loses_updates_at_limit_8() {
                suite::race_loses_updates_at_limit_8::<$framework>().await;
            }

            #[$test]
            async fn safe_counter_is_exact_at_any_limit() {
                suite::safe_counter_is_exact_at_any_limit::<$framework>().await;
            }

            #[$test]
            async fn path_parameters_reach_the_task() {
                suite::path_parameters_reach_the_task::<$framework>().await;
            }

            #[$test]
            async fn query_parameters_reach_the_task() {
                suite::query_parameters_reach_the_task::<$framework>().await;
            }

            #[$test]
            async fn failures_do_not_fail_the_request() {
                suite::failures_do_not_fail_the_request::<$framework>().await;
            }

            #[$test]
            async fn overload_answers_503_with_retry_after() {
                suite::overload_answers_503_with_retry_after::<$framework>().await;
            }

            #[$test]
            async fn release_completes_every_accepted_request() {
                suite::release_completes_every_accepted_request::<$framework>().await;
            }

            #[$test]
            async fn task_status_is_served_as_json() {
                suite::task_status_is_served_as_json::<$framework>().await;
            }

            #[$test]
            async fn sse_streams_a_tasks_events_until_its_end() {
                suite::sse_streams_a_tasks_events_until_its_end::<$framework>().await;
            }

            #[$test]
            async fn sse_shows_each_outcome_in_order() {
                suite::sse_shows_each_outcome_in_order::<$framework>().await;
            }

            #[$test]
            async fn sse_resumes_after_last_event_id() {
                suite::sse_resumes_after_last_event_id::<$framework>().await;
            }

            #[$test]
            async fn sse_answers_a_malformed_last_event_id_with_400() {
                suite::sse_answers_a_malformed_last_event_id_with_400::<$framework>().await;
            }

            #[$test]
            async fn sse_treats_a_blank_last_event_id_as_absent() {
                suite::sse_treats_a_blank_last_event_id_as_absent::<$framework>().await;
            }

            #[$test]
            async fn sse_all_events_replay_nothing_after_the_last_issued_id() {
                suite::sse_all_events_replay_nothing_after_the_last_issued_id::<$framework>().await;
            }

            #[$test]
            async fn sse_task_events_replay_nothing_after_the_final_event() {
                suite::sse_task_events_replay_nothing_after_the_final_event::<$framework>().await;
            }

            #[$test]
            async fn sse_stream_of_all_events_ends_when_streams_close() {
                suite::sse_stream_of_all_events_ends_when_streams_close::<$framework>().await;
            }

            #[$test]
            async fn requests_after_release_answer_503() {
                suite::requests_after_release_answer_503::<$framework>().await;
            }

            #[$test]
            async fn dashboard_serves_its_page_and_routes() {
                suite::dashboard_serves_its_page_and_routes::<$framework>().await;
            }

            #[$test]
            async fn dashboard_streams_a_snapshot_then_its_changes_and_hides_what_it_must() {
                suite::dashboard_streams_a_snapshot_then_its_changes_and_hides_what_it_must::<
                    $framework,
                >()
                .await;
            }
        }
    };
}
pub(crate) use stamp;

/// Stamps the backend-generic cases onto one framework and one backend
/// line, as module `$name`.
macro_rules! stamp_on_backend {
    ($name:ident, $framework:ty, $line:ty, #[$test:meta]) => {
        mod $name {
            use crate::suite;

            #[$test]
            async fn typed_jobs_start_by_priority_and_a_live_key_dedupes() {
                suite::typed_jobs_start_by_priority_and_a_live_key_dedupes::<$framework, $line>()
                    .await;
            }

            #[$test]
            async fn a_delayed_job_is_scheduled_then_runs() {
                suite::a_delayed_job_is_scheduled_then_runs::<$framework, $line>().await;
            }

            #[$test]
            async fn sse_streams_a_jobs_events_until_its_outcome() {
                suite::sse_streams_a_jobs_events_until_its_outcome::<$framework, $line>().await;
            }

            #[$test]
            async fn a_jobs_status_is_served_while_it_runs_and_once_it_finished() {
                suite::a_jobs_status_is_served_while_it_runs_and_once_it_finished::<
                    $framework,
                    $line,
                >()
                .await;
            }

            #[$test]
            async fn dashboard_shows_a_running_job_and_cancels_it_when_allowed() {
                use suite::dashboard_shows_a_running_job_and_cancels_it_when_allowed as case;
                case::<$framework, $line>().await;
            }

            #[$test]
            async fn dashboard_refuses_to_cancel_unless_allowed() {
                suite::dashboard_refuses_to_cancel_unless_allowed::<$framework, $line>().await;
            }

            #[$test]
            async fn dashboard_retries_a_cancelled_job_when_allowed() {
                suite::dashboard_retries_a_cancelled_job_when_allowed::<$framework, $line>().await;
            }

            #[$test]
            async fn dashboard_refuses_to_retry_unless_allowed() {
                suite::dashboard_refuses_to_retry_unless_allowed::<$framework, $line>().await;
            }

            #[$test]
            async fn dashboard_counts_the_jobs_stored_across_processes() {
                suite::dashboard_counts_the_jobs_stored_across_processes::<$framework, $line>()
                    .await;
            }
        }
    };
}
pub(crate) use stamp_on_backend;
