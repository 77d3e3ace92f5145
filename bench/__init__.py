"""`make bench`: throughput and latency of the API against its own database (see __main__)."""
