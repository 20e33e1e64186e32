"""Reference services the labs run as the system under test."""
