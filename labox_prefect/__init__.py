"""labox-prefect: every Prefect task output as a typed, tagged, queryable Labox record."""
