package tools

import (
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable"
)

// DefaultMaxResultBytes is the result size above which Call truncates a
// result, unless the tool sets MaxResultBytes.
const DefaultMaxResultBytes = 64 << 10

// Option configures a tool in New.
type Option struct {
	apply func(*settings) error
}

type settings struct {
	approval       bool
	policy         any // func(In) bool, checked against In in New
	timeout        time.Duration
	retry          durable.RetryPolicy
	idempotent     bool
	maxResultBytes int
}

// RequireApproval makes every call of the tool wait for a human's approval.
func RequireApproval() Option {
	return Option{func(s *settings) error {
		s.approval = true
		return nil
	}}
}

// RequireApprovalIf makes a call wait for a human's approval when policy
// returns true for its decoded arguments, e.g. refunds over 100. In must
// be the tool's argument type, or New fails. The policy must be
// deterministic and free of I/O: it may be evaluated again when a run is
// replayed. It is ignored if RequireApproval is also given.
func RequireApprovalIf[In any](policy func(In) bool) Option {
	return Option{func(s *settings) error {
		if policy == nil {
			return fmt.Errorf("nil approval policy")
		}
		s.policy = policy
		return nil
	}}
}

// Timeout bounds one call of the tool; past it, Call returns ErrTimeout.
// Default: none of its own, the caller's context governs.
func Timeout(d time.Duration) Option {
	return Option{func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("timeout %v: must be positive", d)
		}
		s.timeout = d
		return nil
	}}
}

// Retry sets how failed attempts of the tool (see Call) are retried by the
// layer that runs it. In an agent's run, MaximumAttempts zero means
// agent.DefaultToolAttempts (3) failed attempts, after which the model
// reads that the tool failed; other zero fields take the defaults written
// on durable.RetryPolicy: waits from 1s doubling, and attempts lost with
// their worker (a crash mid-call) retried up to
// durable.DefaultMaximumLostAttempts (10) times, apart from failures.
func Retry(p durable.RetryPolicy) Option {
	return Option{func(s *settings) error {
		s.retry = p
		return nil
	}}
}

// HonorsIdempotencyKey declares that the tool passes the key from
// IdempotencyKey(ctx) to the system it changes, so a retried call does not
// repeat a side effect. A call cut off by a crash is run again either way;
// for a tool that does not honour the key, the agent runtime logs a warning
// that its side effect may happen twice.
func HonorsIdempotencyKey() Option {
	return Option{func(s *settings) error {
		s.idempotent = true
		return nil
	}}
}

// MaxResultBytes sets the size above which a result is truncated, with a
// note, before the model sees it. Default DefaultMaxResultBytes.
func MaxResultBytes(n int) Option {
	return Option{func(s *settings) error {
		if n <= 0 {
			return fmt.Errorf("max result bytes %d: must be positive", n)
		}
		s.maxResultBytes = n
		return nil
	}}
}
