import subprocess
import sys
from pathlib import Path


def test_the_wrapper_and_its_generated_stubs_type_check_strictly() -> None:
    # The generated .pyi stubs are part of the package; mypy --strict over the
    # wrapper and these tests proves they describe the generated code usably.
    project = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "src", "tests"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
