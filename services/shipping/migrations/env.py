from orderdesk.migrations import run_env
from services.shipping.store import metadata

run_env(metadata)
