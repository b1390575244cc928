package backend_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// A history, as a store keeps it, is a list of encoded events. Tools read
// it with no engine: decode each entry, check its position, look at it.
func Example() {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	events := []backend.Event{
		{Seq: 1, Type: backend.EventRunStarted, Time: t0, Name: "order", Payload: []byte(`"order-7"`)},
		{Seq: 2, Type: backend.EventActivityScheduled, Time: t0, Step: 1, Attempt: 1, Name: "ship"},
		{Seq: 3, Type: backend.EventActivityCompleted, Time: t0.Add(time.Second), Step: 1, Attempt: 1, Name: "ship", Payload: []byte(`"shipped"`)},
	}
	var entries [][]byte
	for _, e := range events {
		data, err := backend.EncodeEvent(e, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		entries = append(entries, data)
	}
	fmt.Printf("%s\n", entries[1])

	history, err := backend.DecodeHistory(entries, 1, nil)
	fmt.Println(len(history), history[2].Type, string(history[2].Payload), err)

	// An entry that is not an event is an error, never a panic.
	_, err = backend.DecodeEvent([]byte("garbage"), nil)
	fmt.Println(err != nil)

	// MarshalHistory is the format of exported histories and golden files.
	doc, _ := backend.MarshalHistory(events[:1])
	again, err := backend.UnmarshalHistory(bytes.NewReader(doc))
	fmt.Println(again[0].Name, err)
	// Output:
	// {"v":1,"seq":2,"type":"activity_scheduled","time":"2026-12-03T09:00:00Z","step":1,"attempt":1,"name":"ship"}
	// 3 activity_completed "shipped" <nil>
	// true
	// order <nil>
}

// A run's status says whether it can still make progress.
func ExampleStatus() {
	for _, s := range []backend.Status{backend.StatusWaiting, backend.StatusParked, backend.StatusCompleted} {
		fmt.Println(s, s.Terminal(), s.Dormant())
	}
	// Output:
	// waiting false false
	// parked false true
	// completed true true
}
