from console.store import metadata
from orderdesk.migrations import run_env

run_env(metadata)
