"""drills: disaster-recovery drills with measured RTO, RPO and availability."""

__version__ = "0.1.0"
