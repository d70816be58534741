"""The constraint and index naming convention, in a module that loads no models.

``models.base`` builds its MetaData from it, and so do tables the library creates at run time
(the data migration checkpoints), which must not import the models to get it.
"""

from __future__ import annotations

# Deterministic names, so the models, the raw SQL of the revisions and autogenerate agree
# (SQLAlchemy "Configuring Constraint Naming Conventions").
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
