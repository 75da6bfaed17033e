"""`make bench` section 4's arithmetic: the CPU each process spends per heartbeat, read from /proc, and the
ceilings it sets on the gateway's throughput (bench/gateway_throughput.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.gateway_throughput import (
    CpuPerHeartbeat,
    GatewayThroughput,
    LoadRun,
    child_pids,
    process_cpu_seconds,
)

TICK = os.sysconf("SC_CLK_TCK")


def _stat(proc: Path, pid: int, ppid: int, utime: int, stime: int, name: str = "python (x) y") -> None:
    """A /proc/<pid>/stat line: `pid (comm) state ppid ...`, utime and stime the 14th and 15th fields."""
    (proc / str(pid)).mkdir(parents=True)
    fields = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), *["0"] * 5]
    (proc / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(fields)}\n")


def test_process_cpu_is_user_plus_system_time_summed_over_the_processes(tmp_path: Path) -> None:
    _stat(tmp_path, 10, 1, utime=3 * TICK, stime=TICK, name="a) (tricky")  # a name with parentheses
    _stat(tmp_path, 11, 10, utime=TICK, stime=0)

    assert process_cpu_seconds([10], tmp_path) == pytest.approx(4.0)
    assert process_cpu_seconds([10, 11], tmp_path) == pytest.approx(5.0)
    assert process_cpu_seconds([12], tmp_path) is None  # gone, or no /proc: no figure rather than a wrong one


def test_child_pids_are_the_processes_whose_parent_it_is(tmp_path: Path) -> None:
    _stat(tmp_path, 10, 1, 0, 0)
    _stat(tmp_path, 11, 10, 0, 0)
    _stat(tmp_path, 12, 10, 0, 0)
    _stat(tmp_path, 13, 11, 0, 0)

    assert sorted(child_pids(10, tmp_path)) == [11, 12]
    assert child_pids(13, tmp_path) == []


def test_this_process_is_found_as_a_child_of_its_parent_in_the_real_proc() -> None:
    if not Path("/proc/self/stat").is_file():
        pytest.skip("no /proc")
    assert os.getpid() in child_pids(os.getppid())
    assert (process_cpu_seconds([os.getpid()]) or 0) >= 0


def test_a_serial_backend_caps_throughput_at_one_over_its_cpu_per_heartbeat() -> None:
    cpu = CpuPerHeartbeat(
        gateway=0.004, backend=0.010, clients=0.001, backend_name="moto", backend_serial=True, cores=2
    )

    ceilings = cpu.ceilings()

    assert ceilings["moto, one request at a time"] == pytest.approx(100)
    assert ceilings["the gateway's interpreter (one GIL)"] == pytest.approx(250)
    assert ceilings["2 cores shared by all three"] == pytest.approx(2 / 0.015)
    assert "Ceilings: moto, one request at a time 100/s; 2 cores" in cpu.note()  # the lowest first


def test_a_concurrent_backend_sets_no_ceiling_of_its_own() -> None:
    cpu = CpuPerHeartbeat(0.004, 0.002, 0.001, backend_name="DynamoDB Local", backend_serial=False, cores=2)

    assert set(cpu.ceilings()) == {"the gateway's interpreter (one GIL)", "2 cores shared by all three"}


def _throughput(**changes: object) -> GatewayThroughput:
    figures: dict[str, object] = {
        "clients": 8,
        "requests": 1000,
        "failures": 0,
        "seconds": 8.0,
        "p50_seconds": 0.060,
        "p99_seconds": 0.120,
        "sequential_p50_seconds": 0.014,
        "direct_call_seconds": 0.010,
        "startup_seconds": 3.0,
        "dynamodb_local_missing": "not installed",
    }
    figures.update(changes)
    return GatewayThroughput(**figures)  # type: ignore[arg-type]


def test_notes_give_each_target_its_verdict_and_say_why_a_dynamodb_local_run_is_missing() -> None:
    notes = _throughput().target_notes()

    assert notes[0].startswith(
        "Targets: >= 200/s with 8 clients: MISSED; p99 <= 50 ms: MISSED; one client p50 <= 15 ms: met;"
    )
    assert notes[-1] == "No run with DynamoDB Local: not installed."


def test_notes_carry_the_dynamodb_local_run_and_its_verdicts() -> None:
    local = LoadRun(
        requests=1680,
        failures=0,
        seconds=8.0,
        p50_seconds=0.038,
        p99_seconds=0.049,
        sequential_p50_seconds=0.009,
        reconnects=0,
        startup_seconds=3.0,
        cpu=CpuPerHeartbeat(0.004, 0.002, 0.001, "DynamoDB Local", backend_serial=False, cores=2),
    )

    notes = _throughput(dynamodb_local=local).target_notes()

    assert "210/s with 8 clients, p50 38.0 ms, p99 49.0 ms, one client alone p50 9.0 ms" in notes[-2]
    assert notes[-2].endswith("Targets: >= 200/s with 8 clients: met; p99 <= 50 ms: met; one client p50 <= 15 ms: met.")
    assert notes[-1].startswith("With DynamoDB Local: CPU per heartbeat: gateway process 4.0 ms")


def test_without_dynamodb_local_the_section_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import local.testing
    from bench import gateway_throughput

    monkeypatch.setattr(local.testing, "DYNAMODB_LOCAL_DIR", tmp_path)  # no jar there
    with gateway_throughput.dynamodb_local() as (endpoint, pid, missing):
        assert (endpoint, pid) == ("", 0)
        assert missing.startswith("not installed")

    (tmp_path / "DynamoDBLocal.jar").write_bytes(b"")
    monkeypatch.setattr("bench.gateway_throughput.shutil.which", lambda name: f"/usr/bin/{name}")

    def fails() -> None:
        raise RuntimeError("DynamoDB Local did not start on http://127.0.0.1:1; its output:\nno java")

    monkeypatch.setattr(local.testing, "start_dynamodb_local", fails)
    with gateway_throughput.dynamodb_local() as (endpoint, pid, missing):
        assert endpoint == ""
        assert missing == "it did not start (DynamoDB Local did not start on http://127.0.0.1:1; its output:)"
