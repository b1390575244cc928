package redis

// HistoryKey returns the Redis key of a run's history stream, for a
// person who repairs a damaged history by hand (an XDEL of entries written
// outside the store, a restore from a backup); cairn show prints it.
func (s *Store) HistoryKey(runID string) string { return s.runKeys(runID).history }
