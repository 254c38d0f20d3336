"""DynamoDB on SQLite: tables, items, secondary indexes and the expression language."""
