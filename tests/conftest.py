import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_reach_dataset(tmp_path_factory):
    """A small real Reach dataset, collected once per test session."""
    from worldjepa.data.collect import collect

    out = tmp_path_factory.mktemp("data") / "reach"
    collect("reach", episodes=4, out=str(out), episode_len=20, workers=1, progress=False)
    return str(out)


def run_cli(*args, timeout=300):
    """Run the installed ``worldjepa`` entry point in a subprocess."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "worldjepa.cli", *args], capture_output=True, text=True, timeout=timeout)
