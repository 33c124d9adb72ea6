"""orderdesk.profiling: a profile written where asked, timed by the clock asked for."""

import pstats
import time

from orderdesk.profiling import profiled


def _spin_and_sleep() -> None:
    deadline = time.perf_counter() + 0.05
    while time.perf_counter() < deadline:
        pass
    time.sleep(0.2)


def _profile(tmp_path, monkeypatch, clock: str) -> pstats.Stats:
    folder = tmp_path / clock / "not-yet-made"
    monkeypatch.setenv("ORDERDESK_PROFILE", str(folder))
    monkeypatch.setenv("ORDERDESK_PROFILE_CLOCK", clock)
    with profiled("unit"):
        _spin_and_sleep()
    [written] = folder.iterdir()
    assert written.name.startswith("unit-") and written.suffix == ".prof"
    return pstats.Stats(str(written))


def _seconds_in(stats: pstats.Stats, name: str) -> float:
    return sum(v[3] for k, v in stats.stats.items() if k[2] == name)  # cumulative time


def test_the_profile_is_written_into_a_folder_it_makes(tmp_path, monkeypatch):
    assert _seconds_in(_profile(tmp_path, monkeypatch, "wall"), "_spin_and_sleep") >= 0.24


def test_the_cpu_clock_leaves_out_the_time_asleep(tmp_path, monkeypatch):
    assert _seconds_in(_profile(tmp_path, monkeypatch, "cpu"), "_spin_and_sleep") < 0.15
