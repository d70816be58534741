<%
    # Written by autogenerate (scripts/migrations/rewrite.py): what a change locks and rewrites.
    warnings = config.attributes.get("revision_warnings") or []
    waivers = config.attributes.get("revision_squawk_ignore") or []
    locks = config.attributes.get("revision_locks") or []
    body = (upgrades or "") + (downgrades or "")
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

% if locks:
What it locks (written by autogenerate from the operations below):
% for line in locks:
${line}
% endfor
% else:
What it locks: describe the locks taken and for how long (e.g. "ACCESS EXCLUSIVE on
items, metadata only"). Runbook for production: how long, what it blocks, how to undo.
% endif
% if warnings:

WARNING (written by autogenerate), read before running in production:
% for line in warnings:
${line}
% endfor
% endif
"""

from collections.abc import Sequence

% if "sa." in body:
import sqlalchemy as sa
% endif
% if "op." in body:
from alembic import op
% else:
from alembic import op  # noqa: F401  (for the operations you write below)
% endif
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}
% if waivers:
# The statements named in the WARNING above are what this revision is for; squawk flags them
# on purpose and the warning is the review: remove this line to have CI stop on them again.
squawk_ignore = ${repr(tuple(waivers))}
% endif


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
