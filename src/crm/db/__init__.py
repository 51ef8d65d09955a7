"""The database, by job: table models (models.py), connections and their bounded waits
(connect.py), transactions (transaction.py) and single-statement reads (reads.py)."""
