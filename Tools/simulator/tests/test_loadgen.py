"""loadgen's oracle: replaying the oplog up to each recorded ts reproduces its hashes."""
import json
import os
import subprocess
import sys

from bson import Timestamp

from conftest import SIM_DIR


def test_oracle_replay(make_sim, tmp_path):
    a = make_sim("--txn-chunk-ops", "50")
    oracle = tmp_path / "oracle.jsonl"
    subprocess.run([sys.executable, os.path.join(SIM_DIR, "loadgen.py"), "--uri", a.uri(), "--rate", "400",
                    "--duration", "3", "--seed", "7", "--oracle", str(oracle), "--oracle-every", "0.7",
                    "--large-txn-ops", "120"], check=True, timeout=60)
    records = [json.loads(line) for line in oracle.read_text().splitlines()]
    assert len(records) >= 3
    ca, cb = a.client(), make_sim().client()
    entries = list(ca.local.oplog.rs.find({"op": {"$ne": "n"}}))
    assert any(e["o"].get("partialTxn") for e in entries if e["op"] == "c")
    i = 0
    for rec in records:
        ts = Timestamp(*rec["ts"])
        batch = []
        while i < len(entries) and entries[i]["ts"] <= ts:
            batch.append(entries[i])
            i += 1
        if batch:
            cb.admin.command("applyOps", batch)
        for db, hashes in rec["hashes"].items():
            assert cb[db].command("dbHash")["collections"] == hashes, (db, rec["ts"])
