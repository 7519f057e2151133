"""The chain watcher: reorg-safe, crash-safe, exactly-once ingestion of the suite's events.

`ingest.py` advances one chain's cursor per transaction, `reorg.py` undoes orphaned blocks,
`projections.py` is the framework that turns stored logs into effect rows, `backfill.py` drives
the same step over adaptive `eth_getLogs` ranges.
"""
