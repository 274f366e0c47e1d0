"""`hepgen bench attention --quick` prints and records its table (a smoke test, no timing asserted)."""

import json

from hepgen.cli import main


def test_bench_prints_and_records_the_attention_table(tmp_path, capsys):
    assert (
        main(["bench", "attention", "--quick", "--device", "cpu", "--min-time", "0.01", "--save", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "torch SDPA" in out and "sampling loop" in out
    (record_path,) = tmp_path.glob("*_attention.json")
    record = json.loads(record_path.read_text())
    directions = {row["direction"] for row in record["rows"]}
    assert {"forward", "forward+backward", "17-token sampling loop"} <= directions
    assert all(row["ours_ms"] > 0 and row["baseline_ms"] > 0 for row in record["rows"])
