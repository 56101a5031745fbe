"""``make bench``: jinbao side by side with what users would pick instead, on the same rows and target.

The daqing contribution table (``dbo.T_PAYMENT``) is served by the legacy-city simulator in its own
process and moved into a throwaway PostgreSQL database by each method in its own process:
jinbao's real path, naive pandas, dlt (default and fastest configuration) and a raw floor
(``freebcp`` + ``COPY``). ``python -m bench --help`` for the options; results land in
``bench/RESULTS.md`` and ``bench/results.json``.
"""
