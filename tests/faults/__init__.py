"""The fault suite: orderdesk under kill -9, NATS and PostgreSQL outages and a failing consumer, then the books.

`make faults` (python -m tests.faults --replicas 2) runs the full form; tests/faults/test_faults_short.py runs
a short form in `make test`. See README "Fault suite".
"""
