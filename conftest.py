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

The integration tier runs under pytest-xdist (``-n 3 --dist loadgroup``, tox.ini): its tests spend
their time waiting on boards, brokers and inner runs, so three share these 2 cores. Two tables
below shape that run: ``SEQUENTIAL`` (tests whose bounds are measured against the clock: marked
``sequential``, run after the parallel part with nothing beside them) and ``LONGEST_FIRST``
(tests that run the whole HIL suite: started first, so that the workers finish together). A
module whose tests share a fixture (one board and broker for the module) goes to one worker whole.
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


# Integration tests timed against the clock (a bounded escalation, a lock's poll, a page that
# answers within seconds, a short run timeout): the whole module (None) or the tests named. They
# are marked ``sequential`` and run by themselves after the parallel part (tox -e sequential),
# where their slack was chosen: on a quiet machine, not beside three workers' boards and brokers.
SEQUENTIAL: dict[str, tuple[str, ...] | None] = {
    "test_board_flood.py": None,
    "test_benchmarks.py": None,
    "test_gate_supervise.py": None,
    "test_bench_page.py": ("test_replay_of_a_real_run",),
    "test_lock.py": None,
    "test_dependencies.py": None,
    "test_board_strategy.py": None,
    "test_serial_sink_failure.py": None,
    "test_capture_flood_memory.py": None,
    # A gate run whose timeout (2 s, 10 s) must outlast an inner pytest reaching its test.
    "test_gate.py": ("test_timeout_kills_the_whole_run_and_counts_as_infrastructure",),
    "test_gate_audit.py": (
        "test_a_run_killed_on_timeout_is_audited_by_the_gate_with_its_handed_over_secrets",
        "test_the_first_attempts_folder_is_audited_next_to_the_retry_that_passed",
    ),
    # Mutation cases (tox -e mutation-sequential): a flooding firmware's run must end within a bound.
    "test_catches_flood.py": None,
}

# Tests that run the whole HIL suite in an inner pytest (or two), minutes each where every other
# test takes seconds: under xdist they go first, longest first, so that no worker starts one
# while the others run out of work. A test missing here still runs; the tier just ends later.
LONGEST_FIRST = (
    "tests/rig/test_gate.py::test_whole_hil_suite_passes_and_absent_usb_board_is_skipped",
    "tests/rig/test_tutorial_contract.py::test_the_suite_gives_the_tutorial_its_verdicts",
    "tests/rig/test_external_broker_run.py::test_the_hil_suite_passes_against_a_plain_mosquitto_on_loopback",
    "tests/rig/test_bench.py::test_a_new_user_scans_writes_and_runs_the_suite_on_the_usb_board",
)


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
    return listed(STARTS_PROCESSES, nodeid)


def listed(table: dict[str, tuple[str, ...] | None], nodeid: str) -> bool:
    """Whether a test of tests/rig is in ``table`` (module -> None for all, or test names)."""
    path, _, name = nodeid.partition("::")
    module = path.removeprefix("tests/rig/")
    if module == path or module not in table:
        return False
    names = table[module]
    return names is None or name.split("[")[0] in names


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts background commands (`bash .ci/run &`, nohup) with
    # SIGINT ignored, and Python then keeps it ignored: Ctrl-C (interrupt_main, or SIGINT to a
    # `rig` child, which inherits the disposition) would do nothing, and the tests of how the
    # rig stops on Ctrl-C would wait for a stop that never comes. The suite tests Ctrl-C, so it
    # restores Python's own handler whatever launched it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        "sequential: an integration test timed against the clock, run with nothing beside it "
        "(tox -e sequential)",
    )


# First: pytest-xdist's own hook (``--dist loadgroup``) appends ``@group`` to a grouped test's
# node id, which the tables above would then no longer match.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
        # The mutation tier runs under xdist too (tox -e mutation), its timed cases alone after it.
        if tier in ("integration", "mutation") and listed(SEQUENTIAL, item.nodeid):
            item.add_marker("sequential")
        if tier != "fast" and item.get_closest_marker("xdist_group") is None and shares_setup(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: every worker sorts alike
        items[:] = longest_first(items, int(workerinput.get("workercount", 1)))


def shares_setup(item: pytest.Item) -> bool:
    """Whether the test uses a fixture its module (or class) shares: one board and broker for the
    whole module, say. Under ``--dist loadgroup`` the module's tests then go to one worker
    together (an ``xdist_group`` of the module's path), which sets the fixture up once, rather
    than to every worker, each setting it up again."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definitions[-1].scope in ("module", "class", "package")
        for definitions in info.name2fixturedefs.values()
        if definitions
    )


def longest_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The order the tests are handed out in: one of ``LONGEST_FIRST`` to each worker, then a
    short test each (``--dist loadgroup`` queues a second unit behind each worker's first at
    once, and a test queued behind a long one waits it out), then the rest of the long ones, then
    everything else."""
    rank = {nodeid: place for place, nodeid in enumerate(LONGEST_FIRST)}
    longest = sorted((i for i in items if i.nodeid in rank), key=lambda i: rank[i.nodeid])
    rest = [i for i in items if i.nodeid not in rank]
    return longest[:workers] + rest[:workers] + longest[workers:] + rest[workers:]
