"""What a run leaves behind for people to read: the leaderboard and the per-model plots."""
