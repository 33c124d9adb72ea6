from orderdesk.migrations import run_env
from services.notifier.store import metadata

run_env(metadata)
