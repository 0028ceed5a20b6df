"""People: users, their passwords, one-time set-password links and console sessions."""
