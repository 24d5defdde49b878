"""The transactions archive (the nightly batch job's input), on real Flink 1.20.

The archive INSERT runs as on the managed service, with the local transactions table in place of
the Kafka one and a local directory in place of s3://.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

from fraudstream.paths import REPO
from tests.flink.conftest import FLINK_PYTHON, MAIN

SCRIPT = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("flink_main", sys.argv[1])
    main = importlib.util.module_from_spec(spec); spec.loader.exec_module(main)
    env = main.table_environment(parallelism=1)
    env.get_config().set("execution.checkpointing.interval", "500ms")
    for ddl in main.local_tables(sys.argv[2], sys.argv[3], "processing", None) + \\
            main.archive_tables({"archive.path": sys.argv[4]}):
        env.execute_sql(ddl)
    env.execute_sql("INSERT INTO transactions_archive " + main.archive_query()).wait()
""")


def test_every_valid_transaction_lands_in_its_utc_day_partition(tmp_path):
    # Given transactions on both sides of a UTC midnight, and a malformed line
    source = tmp_path / "transactions"
    source.mkdir()
    midnight = 1_653_004_800.0  # 2022-05-20T00:00:00Z
    rows = [{"cc_num": 4111, "amount": 12.5, "trans_ts": midnight - 1.0, "merchant": "m", "zip_code": "z"},
            {"cc_num": 4111, "amount": 3.25, "trans_ts": midnight, "merchant": "m", "zip_code": "z"},
            {"cc_num": 4222, "amount": 99.0, "trans_ts": midnight + 7200.5, "merchant": "m", "zip_code": "z"}]
    (source / "part-0.json").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    archive = tmp_path / "archive"
    # When the archive INSERT runs
    result = subprocess.run([str(FLINK_PYTHON), "-c", SCRIPT, str(MAIN), str(source), str(tmp_path / "aggregates"),
                             archive.as_uri()], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    # Then each transaction is in the partition of its UTC day, with the columns the batch job reads
    found = {}
    for day in sorted(p.name for p in archive.iterdir() if p.name.startswith("dt=")):
        files = [f for f in (archive / day).iterdir() if not f.name.startswith((".", "_"))]
        found[day] = sorted((m["cc_num"], float(m["amount"]), m["trans_ts"]) for f in files
                            for m in map(json.loads, f.read_text().splitlines()))
    assert found == {"dt=2022-05-19": [(4111, 12.5, midnight - 1.0)],
                     "dt=2022-05-20": [(4111, 3.25, midnight), (4222, 99.0, midnight + 7200.5)]}
