"""Importers of public community datasets into GridLedger's dataset and community file.

Each importer reads one published layout, checks it cell by cell (errors name the file,
the row and the column) and returns an `Imported`: a `Community` on the market's
interval grid, plus what the layout says about each home's assets. `write_imported`
writes it as a directory that `gridledger simulate` runs as it is:

    data.csv (or .parquet)  the dataset: timestamp, participant, consumption_kwh, production_kwh
    community.csv           the community file: each participant's assets (node.data.assets)
    community.toml          a config naming them: the market's epoch at the data's first
                            interval, its interval length, the data's time zone
    jobs.csv, loads/        deferrable jobs, if the layout has them (node.data.jobs)

Modules: `ausgrid` (AusGrid Solar Home), `pyssmic` (PySSMic neighbourhoods),
`ets` (energy_trading_system's long table).
"""
