package providers

import "context"

// Embedder turns texts into vectors whose closeness says how alike the
// texts are in meaning: long-term memory searches by it (package memory).
//
// Embed returns one vector per text, in order, all of the same length,
// or an error: never fewer vectors than texts. It must be safe for
// concurrent use. Errors should carry a kind with Classify, as a Model's
// do, so that retries do the right thing: a rate limit or a server error
// is retried, a bad request is not.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}
