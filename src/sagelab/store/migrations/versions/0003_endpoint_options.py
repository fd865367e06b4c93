"""endpoint options: data capture, shadow variants, autoscaling and deployment state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("endpoint_configs", "endpoints"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("options", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
            )


def downgrade() -> None:
    for table in ("endpoints", "endpoint_configs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("options")
