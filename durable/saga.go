package durable

import (
	"errors"
	"fmt"
)

// Saga records compensations as a workflow makes changes, so that on
// failure or cancellation it can undo them in reverse order:
//
//	var saga durable.Saga
//	if _, err := durable.Execute(ctx, reserve, order); err != nil {
//		return err
//	}
//	saga.Add(func(ctx durable.Context) error { _, err := durable.Execute(ctx, release, order); return err })
//	if _, err := durable.Execute(ctx, charge, order); err != nil {
//		return errors.Join(err, saga.Compensate(ctx))
//	}
//
// A Saga lives in workflow memory; replay rebuilds it with the workflow.
// The zero value is ready to use.
type Saga struct {
	steps []func(Context) error
}

// Add records a compensation to run if the saga is compensated.
func (s *Saga) Add(compensate func(ctx Context) error) {
	s.steps = append(s.steps, compensate)
}

// Compensate runs the recorded compensations, last added first, with a
// context that is not canceled (so they also run after a cancellation),
// and returns their errors joined. Every compensation runs even if an
// earlier one failed. The saga is empty afterwards.
func (s *Saga) Compensate(ctx Context) error {
	ctx = WithoutCancel(ctx)
	var errs []error
	for i := len(s.steps) - 1; i >= 0; i-- {
		if err := s.steps[i](ctx); err != nil {
			errs = append(errs, fmt.Errorf("compensation %d: %w", i+1, err))
		}
	}
	s.steps = nil
	return errors.Join(errs...)
}
