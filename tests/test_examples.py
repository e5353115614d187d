import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_scope_example_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "scope_in_your_loop.py")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lambda_H^1 along training" in proc.stdout
    assert (tmp_path / "runs" / "example-scope" / "metrics.parquet").exists()
