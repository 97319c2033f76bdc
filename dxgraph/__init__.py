"""dxgraph: multi-agent diagnostic workflows and telemedicine dialogue benchmarks.

Research software: not a medical device, not for clinical use.
"""

__version__ = "0.1.0"
