"""dlt's copy of one PostgreSQL table into another, as bench/PEERS.md measured it: the
`sql_table` source with the connectorx backend (Arrow), loaded as parquet (ADBC) with
`write_disposition="replace"`.

Usage: python dlt_copy.py SOURCE_URL DESTINATION_URL TABLE
"""

import sys

import dlt
from dlt.sources.sql_database import sql_table

source_url, destination_url, table = sys.argv[1:4]
source = sql_table(credentials=source_url, table=table, backend="connectorx")
pipeline = dlt.pipeline(
    pipeline_name="lockstep_bench",
    destination=dlt.destinations.postgres(destination_url),
    dataset_name="public",
)
info = pipeline.run(source, write_disposition="replace", loader_file_format="parquet")
print(info)
