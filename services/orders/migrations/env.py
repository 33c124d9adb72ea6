from orderdesk.migrations import run_env
from services.orders.store import metadata

run_env(metadata)
