"""customers: `pending` is a status

The prototype front end offers `pending` (a customer awaiting approval) in its filters and
forms; the status CHECK constraint takes it too. The segment counters need no change: their
rows are created per (status, type) as customers appear.

Revision ID: 7c2e5b9a1d40
Revises: 7b2e9d41c0a8
Create Date: 2026-12-04 04:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c2e5b9a1d40"
down_revision: str | None = "7b2e9d41c0a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("active", "inactive", "lead", "prospect", "customer")
AFTER = (*BEFORE, "pending")


def _check(statuses: tuple[str, ...]) -> None:
    # Swapped in one transaction: the old constraint is never missing for a concurrent writer.
    op.drop_constraint(op.f("ck_customers_status"), "customers", type_="check")
    listed = ", ".join(f"'{s}'" for s in statuses)
    op.create_check_constraint(op.f("ck_customers_status"), "customers", f"status IN ({listed})")


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    # Refuses (the CHECK fails) while any customer is still pending: decide their status first.
    _check(BEFORE)
