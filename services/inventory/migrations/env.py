from orderdesk.migrations import run_env
from services.inventory.store import metadata

run_env(metadata)
