"""inventory: working days and time zones (warehouses' time zone, local cut-off and working days;
holidays per warehouse or country; lanes' transit working days), see orderdesk/calendar_store.py

Revision ID: 0005
"""

from alembic import op

from orderdesk.calendar_store import downgrade_calendars, upgrade_calendars

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    upgrade_calendars(op)


def downgrade() -> None:
    downgrade_calendars(op)
