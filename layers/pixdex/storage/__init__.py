"""All SQL: connections, migrations, and one module per table family."""
