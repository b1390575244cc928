package durabletest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/durabletest"
)

func Example() {
	// snippet:durabletest
	remind := durable.NewActivity("remind", func(ctx context.Context, who string) (string, error) {
		return "", fmt.Errorf("would send a real e-mail")
	})
	trial := durable.NewWorkflow("trial", func(ctx durable.Context, who string) (string, error) {
		if err := durable.Sleep(ctx, 14*24*time.Hour); err != nil {
			return "", err
		}
		return durable.Execute(ctx, remind, who)
	})

	env := durabletest.New(nil, trial)
	durabletest.Mock(env, remind, func(ctx context.Context, who string) (string, error) {
		return "reminded " + who, nil
	})
	out, err := durabletest.Run(env, trial, "trial-1", "kim")
	fmt.Println(out, err)
	fmt.Println("days passed:", env.Clock.Now().Sub(durabletest.Start()).Hours()/24)
	// end snippet:durabletest

	// Output:
	// reminded kim <nil>
	// days passed: 14
}
