import warnings

# Single-run backfill policies and partition mappings that tolerate missing upstream weeks are
# "beta" in Dagster 1.13; they are what the design needs, so the warning is noise for users.
warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
