"""`hepgen bench jetgpt --quick` prints and records its table (a smoke test, no timing asserted)."""

import json

from hepgen.cli import main


def test_bench_prints_and_records_the_jetgpt_table(tmp_path, capsys):
    assert main(["bench", "jetgpt", "--quick", "--device", "cpu", "--min-time", "0.01", "--save", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "KV-cache decode" in out and "re-run the prefix every step" in out
    (record_path,) = tmp_path.glob("*_jetgpt.json")
    rows = json.loads(record_path.read_text())["rows"]
    assert len(rows) == 2 and {r["direction"] for r in rows} == {"sampling"}
    assert all(r["ours_ms"] > 0 and r["baseline_ms"] > 0 and r["elements"] == 200 for r in rows)
