"""Measurements and searches on a Ray cluster of boards (`pip install -e '.[farm]'`, docs/farm.md).

Every board is a `BoardWorker` actor (harness.farm.worker) placed on a host that advertises the
custom resource `board:<name>`; a `BoardPool` (harness.farm.pool) hands jobs to idle workers and
re-queues a lost worker's job on another board of the same kind. harness.farm.cluster starts or
joins the cluster. Ray is imported only by these modules, and they only when `--farm` is given.
"""
