package syncbuf_test

import (
	"fmt"
	"sync"

	"github.com/cairn-dev/cairn/internal/syncbuf"
)

func Example() {
	var buf syncbuf.Buffer
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { fmt.Fprint(&buf, "x") })
	}
	wg.Wait()
	fmt.Println(buf.String())
	// Output: xxx
}
