//! Runs every case of the storage contract against SQLite and against PostgreSQL.

use sessiond_store_conformance::{Kind, TestDb};

macro_rules! conformance_suite {
    ($module:ident: $($case:ident),* $(,)?) => {
        mod $module {
        use super::*;
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = TestDb::new(Kind::Sqlite).await.unwrap_or_else(|| panic!("sqlite test db"));
                    sessiond_store_conformance::$module::$case(&db).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = TestDb::new(Kind::Postgres).await else { return };
                    sessiond_store_conformance::$module::$case(&db).await;
                }
            )*
        }
        }
    };
}

conformance_suite!(
    cases:
    health_and_migrations,
    meta_first_writer_wins,
    application_round_trip,
    application_insert_is_atomic,
    application_update_is_optimistic,
    api_keys_lookup_and_revoke,
    tenant_isolation,
    revoked_keys_purge_at_cutoff,
    sealed_values_enumerate_and_swap,
    vault_pepper_and_wrong_key,
    master_key_rotation_round_trip,
    jobs_run_once_across_nodes,
    auth_epoch_moves_with_keys_and_applications,
);

conformance_suite!(
    login_cases:
    users_round_trip_filters_and_uniqueness,
    sessions_lifecycle_listing_and_isolation,
    sessions_purge_after_retention,
    signing_keys_rotate_atomically,
    templates_round_trip_and_isolation,
    session_with_user_in_one_read,
    a_session_read_again_shows_every_change_since,
    sessions_update_together_or_not_at_all,
    sessions_modified_in_place_lose_no_update,
    a_change_is_written_and_refused_as_an_update,
    resealing_a_session_moves_its_version,
    session_deletions_by_user_and_lapse,
    deleting_all_of_a_users_sessions_is_one_write,
    deleting_lapsed_sessions_is_one_write,
    concurrent_creations_are_answered_each_on_its_own,
    sessions_written_together_are_never_half_written,
);

conformance_suite!(
    event_cases:
    events_are_written_with_their_change_only,
    events_purge_by_age_and_cursors_survive,
    lapses_bulk_deletions_and_verifications_write_their_events,
);

conformance_suite!(
    webhook_cases:
    webhook_endpoints_round_trip_and_isolation,
    new_events_go_by_cursor_and_failures_are_retried,
);

conformance_suite!(
    console_cases:
    operator_actions_filter_page_and_outlive_applications,
    events_count_by_bucket_and_list_by_subject,
    impersonations_list_by_application_and_user,
);

conformance_suite!(
    verification_cases:
    verification_round_trip_and_isolation,
    verification_listing_orders_and_pages,
    verification_expiry_and_retention,
);
