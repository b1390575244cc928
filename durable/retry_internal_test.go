package durable

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Failures and lost attempts are counted apart: each against its own cap.
func TestRetriesCountsLostApart(t *testing.T) {
	failed := &backend.Failure{Kind: backend.KindError}
	lostF := &backend.Failure{Kind: backend.KindLost}
	for _, tc := range []struct {
		name          string
		policy        RetryPolicy
		attempt, lost int
		f             *backend.Failure
		want          bool
	}{
		{"failure under cap after lost attempts", RetryPolicy{MaximumAttempts: 2}, 4, 3, failed, true},
		{"failure at cap after lost attempts", RetryPolicy{MaximumAttempts: 2}, 5, 3, failed, false},
		{"failure at cap", RetryPolicy{MaximumAttempts: 2}, 2, 0, failed, false},
		{"lost past failure cap", RetryPolicy{MaximumAttempts: 1}, 5, 4, lostF, true},
		{"lost at default cap", RetryPolicy{}, DefaultMaximumLostAttempts, DefaultMaximumLostAttempts - 1, lostF, false},
		{"lost under default cap", RetryPolicy{}, 9, DefaultMaximumLostAttempts - 2, lostF, true},
		{"lost at own cap", RetryPolicy{MaximumLostAttempts: 3}, 3, 2, lostF, false},
		{"lost unlimited", RetryPolicy{MaximumLostAttempts: -1}, 1000, 999, lostF, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.policy.retries(tc.attempt, tc.lost, tc.f))
		})
	}
}
