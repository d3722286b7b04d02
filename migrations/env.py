import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from leads.models import schema_objects_of
from leads.timeutil import UTCDateTime

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
    except AttributeError:
        return str(get_engine().url).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def render_item(type_, obj, autogen_context):
    """Migrations store plain timezone-aware datetimes; UTCDateTime is Python-side only."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _sqlite_foreign_keys(connection, enforced: bool) -> None:
    """Switch SQLite's enforcement of foreign keys for this connection. A no-op inside a
    transaction, so it goes to the driver's connection before any begins (and after the last)."""
    connection.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def _foreign_keys_hold(ctx, step, heads, run_args):
    """SQLite: each migration, run with foreign keys unenforced, commits only if every one still
    holds (PRAGMA foreign_key_check); else it is rolled back and the upgrade stops here."""
    broken = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        found = "; ".join(f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in broken[:10])
        way = "Upgrading to" if step.is_upgrade else "Downgrading from"
        raise RuntimeError(
            f"{way} {step.up_revision_id} would leave rows pointing at nothing ({len(broken)}): {found}"
        )


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=get_metadata(), literal_binds=True, render_item=render_item)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection:
        conf_args.setdefault("include_object", schema_objects_of(connection.dialect.name))
        # SQLite changes a table's constraints only by copying it (batch mode), and dropping the old
        # copy of a table others point at fails while foreign keys are enforced: SQLite's own
        # procedure for such changes turns enforcement off and checks every key before committing.
        sqlite = connection.dialect.name == "sqlite"
        checks = {"on_version_apply": _foreign_keys_hold} if sqlite else {}
        if sqlite:
            _sqlite_foreign_keys(connection, enforced=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=get_metadata(),
                render_item=render_item,
                **conf_args,
                **checks,
            )

            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:
                # End what no migration committed (the version read), or the switch would not take.
                connection.rollback()
                _sqlite_foreign_keys(connection, enforced=True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
