from alembic import context

from riskops.migrations import in_models
from riskops.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through riskops.migrations (riskops migrate), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    include_name=in_models,  # the search objects of 0008 are no models: autogenerate must not drop them
)
with context.begin_transaction():
    context.run_migrations()
