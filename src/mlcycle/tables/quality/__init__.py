"""The table kind's part of the quality tools: ``validate_data.py`` and ``eda.py`` given
``--table`` (or a config whose data module is a ``TabularData``), through the quality tools'
seam (:mod:`mlcycle.quality.kinds`; the part is :mod:`.kind`). The table is read with
:func:`mlcycle.tables.read.read_table` and typed with :func:`mlcycle.tables.schema.infer_schema`,
as training reads and types it."""
