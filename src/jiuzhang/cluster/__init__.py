"""Running a stage's work on a Ray cluster: the session (start a local cluster or join one), a pool of
long-lived workers that pull units of work, and the training gang."""
