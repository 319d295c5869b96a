"""The repository-level suites: the stack (tests/stack) and fault injection (tests/reliability)."""
