"""`python -m bench` (`make bench`): performance figures beside same-run baselines; see bench/report.py."""

from bench.environment import apply_bench_environment

# Settings and Powertools read the environment once per process: set it before anything imports hangar.
apply_bench_environment()

from bench.report import main  # noqa: E402

raise SystemExit(main())
