"""The repository's own pytest setup: the rig's plugin, and the three test tiers.

Every test gets exactly one tier marker, so that ``pytest -m fast`` (or ``integration``,
``mutation``) picks a tier:

- ``mutation``: a test module that breaks the firmware on purpose says so itself
  (``pytestmark = pytest.mark.mutation``); each of its tests runs the suite in a pytest of its own.
- ``integration``: a test that needs a board, a broker or a process of its own. Known from what it
  asks for (the ``hil`` marker, a fixture that starts or reaches a board or a broker) or, where
  the test's body starts them itself, from ``STARTS_PROCESSES`` below; tests/hil and tests/lab
  all are.
- ``fast``: everything else. tests/rig/conftest.py holds the fast tier to that: a fast test that
  starts a process or reaches the network fails, naming what it tried.
"""

from __future__ import annotations

import signal

import pytest

# The installed rig registers its plugin itself (a pytest11 entry point); this line keeps a
# checkout that is not installed (PYTHONPATH=.) working. Both together load it once.
pytest_plugins = ["rig.plugin"]

# Fixtures that start, or reach, a board or a broker (the rig's and tests/rig/conftest.py's).
INTEGRATION_FIXTURES = frozenset(
    {
        "rig_session",
        "broker",
        "board",
        "mqtt",
        "serial_log",
        "broker_log",
        "private_broker",
        "virtual_board",
        "console",
    }
)

# Tests of tests/rig whose bodies start a process (a MicroPython board, a broker, the CLI, an inner
# pytest, Chromium, `ip netns`) or reach the network, with no fixture saying so: the whole module
# (None) or the tests named (parametrized ones with every parameter). The fast tier's guard finds a
# missing entry: the test fails there, naming the process it started.
STARTS_PROCESSES: dict[str, tuple[str, ...] | None] = {
    "test_bench.py": None,
    "test_flaky_hil.py": None,
    "test_doctor_board.py": None,
    "test_tutorial_contract.py": None,
    "test_bench_page_browser.py": None,
    "test_benchmarks.py": (
        "test_runner_writes_results_json_of_every_figure",
        "test_a_module_that_cannot_measure_here_is_skipped_not_failed",
        "test_context_stops_what_it_started_and_removes_its_temp_dir",
        "test_serial_benchmark_quick_verifies_every_byte",
        "test_rfc2217_benchmark_quick_verifies_every_byte_through_ser2net",
    ),
    "test_bench_page.py": ("test_replay_of_a_real_run",),
    "test_board_kinds.py": ("test_a_virtual_board_is_one_flash_directory",),
    "test_board_terminal_signals.py": None,
    "test_dependencies.py": (
        "test_real_pypi_fetch_fills_the_cache",
        "test_filled_cache_works_without_network",
    ),
    "test_deps_lock.py": ("test_cli_configuration_errors_exit_2",),
    "test_release.py": None,
    "test_broker.py": (
        "test_start_failure_reports_exit_code_and_log",
        "test_relative_workdir_is_resolved_by_the_broker",
        "test_broker_dies_with_a_killed_parent",
        "test_mosquitto_does_not_audit_wills",
        "test_external_broker_connects_but_cannot_restart_or_audit",
    ),
    "test_broker_access.py": (
        "test_a_wrong_login_is_refused",
        "test_an_account_connects_and_anonymous_is_refused",
        "test_a_board_session_survives_disconnect_and_reconnect",
        "test_a_board_uses_its_prefix_and_the_host_every_prefix",
        "test_messages_reach_every_subscriber_while_others_subscribe",
        "test_the_neighbour_receives_nothing_of_a_board",
        "test_the_neighbour_cannot_publish_to_a_board",
        "test_a_session_resumed_by_the_neighbour_gets_nothing_of_the_board",
        "test_a_refused_connect_leaves_the_session_of_its_client_id_alone",
        "test_an_open_broker_admits_anonymous_clients_to_every_topic",
        "test_the_tls_listener_proves_the_run_certificate",
        "test_the_workdir_never_holds_a_password",
    ),
    "test_broker_record_log.py": ("test_on_an_external_broker_a_records_check_is_a_skip_naming_it",),
    "test_broker_records.py": None,
    "test_capture_killed.py": None,
    "test_cli.py": (
        "test_top_level_help_documents_exit_codes_in_a_subprocess",
        "test_list_committed_inventory_in_a_subprocess",
        "test_bad_inventory_in_a_subprocess",
        "test_deploy_warns_when_no_broker_listens",
        "test_exec_board_exception_exits_1_with_traceback",
        "test_exec_reads_code_from_stdin_and_resets",
        "test_exec_timeout_interrupts_the_code",
        "test_monitor_forwards_piped_input_in_a_subprocess",
        "test_monitor_in_process",
        "test_broker_runs_until_sigterm",
    ),
    "test_cli_broker.py": None,
    "test_cli_up.py": None,
    "test_gate.py": (
        "test_usage_and_config_errors_exit_2",
        "test_whole_hil_suite_passes_and_absent_usb_board_is_skipped",
        "test_pytest_args_after_double_dash_and_board_subset",
        "test_broken_firmware_fails_the_gate_and_is_not_retried",
        "test_infrastructure_failure_is_retried_once",
        "test_timeout_kills_the_whole_run_and_counts_as_infrastructure",
        "test_strict_fails_the_gate_on_a_missing_board",
    ),
    "test_gate_supervise.py": None,
    "test_hil_isolation.py": None,
    "test_history_gate.py": None,
    "test_board_health_gate.py": None,
    "test_history_postgres.py": None,
    "test_health_secrets.py": (
        "test_a_virtual_board_on_the_embedded_broker_logs_in_with_its_own_account",
        "test_the_benchs_own_credentials_win_and_a_plain_user_name_is_no_secret",
    ),
    "test_lock.py": (
        "test_another_process_holds_then_releases",
        "test_acquire_waits_for_a_release",
        "test_lock_of_a_sigkilled_holder_is_taken_over_at_once",
        "test_programs_started_by_the_holder_do_not_inherit_the_lock",
        "test_release_in_a_forked_child_keeps_the_parents_lock",
    ),
    "test_netns.py": None,
    "test_parallel_gate.py": (
        "test_boards_run_at_once_unless_jobs_says_otherwise",
        "test_ctrl_c_stops_every_board_run",
    ),
    "test_plugin.py": None,
    "test_plugin_entry_point.py": (
        "test_a_project_without_conftest_gets_the_rig_options",
        "test_a_project_without_conftest_gets_the_rig_fixtures",
        "test_the_conftest_line_and_the_entry_point_together",
    ),
    "test_plugin_records.py": None,
    "test_reenumeration.py": None,
    "test_report.py": (
        "test_chromium_renders_a_screenshot",
        "test_chromium_dom_has_grid_open_failure_timeline_and_plot",
    ),
    "test_secrets_audit.py": ("test_a_password_in_hex_in_a_real_rig_event_line",),
    "test_virtual_board.py": None,
    "test_xdist_claim.py": (
        "test_two_workers_each_run_on_a_board_of_their_own",
        "test_a_worker_without_a_free_board_skips_its_tests_saying_why",
    ),
}


def tier_of(item: pytest.Item) -> str:
    """The tier a test belongs to (see the module's docstring)."""
    if item.get_closest_marker("mutation") is not None:
        return "mutation"
    if item.get_closest_marker("integration") is not None or item.get_closest_marker("hil") is not None:
        return "integration"
    if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return "integration"
    if item.nodeid.startswith(("tests/hil/", "tests/lab/")) or starts_processes(item.nodeid):
        return "integration"
    return "fast"


def starts_processes(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    module = path.removeprefix("tests/rig/")
    if module == path or module not in STARTS_PROCESSES:
        return False
    names = STARTS_PROCESSES[module]
    return names is None or name.split("[")[0] in names


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts background commands (`bash .ci/run &`, nohup) with
    # SIGINT ignored, and Python then keeps it ignored: Ctrl-C (interrupt_main, or SIGINT to a
    # `rig` child, which inherits the disposition) would do nothing, and the tests of how the
    # rig stops on Ctrl-C would wait for a stop that never comes. The suite tests Ctrl-C, so it
    # restores Python's own handler whatever launched it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
