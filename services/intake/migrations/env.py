from orderdesk.migrations import run_env
from services.intake.store import metadata

run_env(metadata)
