"""Data quality before training: validation, cleaning (quarantine), materialization and EDA.

Every tool here only reads the user's data; what it writes goes to its own output folder.
"""
