package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// The transcript of a conversation.
//
// A conversation continues as new every ConversationLimit exchanges, and
// with a memory policy the next generation carries only the compacted
// state and the recent window: the messages compacted away
// (state.messages[:state.window]) would exist nowhere once the old history
// is replaced. So the generation that ends archives them first, with the
// archive activity, in the store's backend.Archive (the run's blobs, which
// live and die with the run):
//
//	<hex SHA-256 of the message's JSON>   the message, stored once however often it is said
//	transcript/<generation>               the index: the keys of the generation's archived messages, in order
//
// Every message is thus archived by the generation that drops it, or is
// carried to the next, or is in the current one: the transcript is the
// archived generations' messages, in order, then the current generation's.
// Blobs are payloads at rest: their bytes go through the runtime's codec,
// while their keys are computed on the plain JSON, so a message is stored
// once whatever the codec does.

// indexKey is the key of the index blob of a generation.
func indexKey(generation int) string { return "transcript/" + strconv.Itoa(generation) }

// archiveCall is the input of the archive activity: the messages a
// generation drops, in order. Like every activity input, it is journaled as
// a hash.
type archiveCall struct {
	Generation int                 `json:"generation"`
	Messages   []providers.Message `json:"messages"`
}

// archived is the journaled output of the archive activity.
type archived struct {
	// Index is the key of the generation's index.
	Index string `json:"index"`
	// Messages counts the messages archived; Blobs the distinct ones.
	Messages int `json:"messages"`
	Blobs    int `json:"blobs"`
}

// transcriptIndex is the content of an index blob.
type transcriptIndex struct {
	Generation int      `json:"generation"`
	Messages   []string `json:"messages"`
}

// archiveDropped archives, as a conversation continues as new, the
// messages of this generation that the next does not carry: none without
// a compaction. On a store that is no backend.Archive it archives nothing,
// and logs so once. An archive that fails for good is logged at Error and
// the conversation goes on without it: the transcript misses those
// messages. It returns an error only if the run is canceled.
func (rt *Runtime) archiveDropped(ctx durable.Context, st *state, generation int) error {
	if st.window == 0 {
		return nil
	}
	log := durable.Logger(ctx)
	if rt.archive == nil {
		// Not while replaying (the logger is then off), so that the
		// one message is seen.
		if log.Enabled(context.Background(), slog.LevelInfo) && rt.noArchive.CompareAndSwap(false, true) {
			log.Info("the store keeps no archive: messages that conversations compact away are not kept for their transcripts")
		}
		return nil
	}
	_, err := durable.Execute(ctx, st.reg.archive, archiveCall{Generation: generation, Messages: st.messages[:st.window]})
	switch {
	case errors.Is(err, durable.ErrCanceled):
		return err
	case err != nil:
		log.Error("archive the messages the conversation compacted away: its transcript misses them",
			"generation", generation, "messages", st.window, "err", err)
	}
	return nil
}

// archiveMessages is the archive activity: it writes each message as a
// blob under its content address and the generation's index, in one
// PutBlobs, which keeps blobs written already: a retried attempt changes
// nothing.
func (rt *Runtime) archiveMessages(ctx context.Context, c archiveCall) (archived, error) {
	info, _ := durable.ActivityInfoFrom(ctx)
	if rt.archive == nil {
		return archived{}, durable.NonRetryable(errors.New("the store keeps no archive"))
	}
	blobs := map[string][]byte{}
	index := transcriptIndex{Generation: c.Generation, Messages: make([]string, len(c.Messages))}
	for i, m := range c.Messages {
		plain, err := json.Marshal(m)
		if err != nil {
			return archived{}, durable.NonRetryable(fmt.Errorf("encode message %d: %w", i, err))
		}
		key := contentKey(plain)
		index.Messages[i] = key
		if _, ok := blobs[key]; ok {
			continue
		}
		if blobs[key], err = rt.sealBlob(plain); err != nil {
			return archived{}, err
		}
	}
	out := archived{Index: indexKey(c.Generation), Messages: len(c.Messages), Blobs: len(blobs)}
	plain, err := json.Marshal(index)
	if err != nil {
		return archived{}, durable.NonRetryable(fmt.Errorf("encode index: %w", err))
	}
	if blobs[out.Index], err = rt.sealBlob(plain); err != nil {
		return archived{}, err
	}
	if err := rt.archive.PutBlobs(ctx, info.RunID, blobs); err != nil {
		if errors.Is(err, backend.ErrRunNotFound) {
			return archived{}, durable.NonRetryable(err)
		}
		return archived{}, err
	}
	return out, nil
}

// contentKey is the content address of a blob: the hex SHA-256 of its
// plain bytes.
func contentKey(plain []byte) string {
	sum := sha256.Sum256(plain)
	return hex.EncodeToString(sum[:])
}

// sealedPrefix begins a blob or a live event that the codec encoded:
// "codec:<name>\n", then the codec's bytes. A plain one is JSON, which
// cannot begin so.
const sealedPrefix = "codec:"

// sealBlob encodes a blob's or a live event's plain JSON for rest, with
// the runtime's codec if it has one.
func (rt *Runtime) sealBlob(plain []byte) ([]byte, error) {
	if rt.codec == nil {
		return plain, nil
	}
	if strings.ContainsRune(rt.codec.Name(), '\n') {
		return nil, durable.NonRetryable(fmt.Errorf("codec name %q holds a newline", rt.codec.Name()))
	}
	enc, err := rt.codec.Encode(plain)
	if err != nil {
		return nil, fmt.Errorf("encode blob with codec %s: %w", rt.codec.Name(), err)
	}
	return append([]byte(sealedPrefix+rt.codec.Name()+"\n"), enc...), nil
}

// openBlob decodes a blob sealed by sealBlob, with any codec or none; what
// names it in errors ("blob <key>", "live event <id>").
func (rt *Runtime) openBlob(what string, data []byte) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(data, []byte(sealedPrefix)); ok {
		name, enc, ok := bytes.Cut(rest, []byte("\n"))
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s: no codec name", backend.ErrCorruptHistory, what)
		case rt.codec == nil || rt.codec.Name() != string(name):
			return nil, fmt.Errorf("%w: %s needs codec %q", backend.ErrCorruptHistory, what, name)
		}
		plain, err := rt.codec.Decode(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: codec %s: %v", backend.ErrCorruptHistory, what, name, err)
		}
		data = plain
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: %s is not JSON", backend.ErrCorruptHistory, what)
	}
	return data, nil
}

// transcriptTries bounds how often Transcript reads a run again that
// continued as new while it was read.
const transcriptTries = 5

// Transcript returns the conversation of a run from its first message:
// the messages of its earlier generations (a conversation continues as new
// every Agent.ConversationLimit exchanges), read from the store's archive,
// then those of its current generation, each message once, in order.
//
// A generation archives, as it ends, the messages the next does not carry:
// those its memory policy compacted away. Without a memory policy a
// conversation carries every message, and its current generation holds
// them all. Messages that a generation dropped and could not archive are
// missing: on a store that is no backend.Archive (the worker logs it once,
// at Info), or when the archive activity failed for good (the worker logs
// it at Error).
//
// The current generation's messages are rebuilt by replaying the run's
// current history against the agent registered with this runtime under
// the run's workflow name: they are the messages the run holds at the end
// of its recorded history, whatever its status. For a run in progress that
// is the conversation up to its last recorded step: the user message being
// answered is in it, a model's answer once its call is recorded, and a
// turn's tool results once all the turn's calls are. If the agent is not
// registered with this runtime, the messages of a completed run are read
// from its result (RunResult.Messages, which for a conversation end with
// its last exchange that succeeded), and any other run gives an error
// wrapping durable.ErrUnregistered.
//
// Errors wrap backend.ErrRunNotFound for an unknown run, and
// backend.ErrCorruptHistory, naming the key, for an archived message or
// index that is missing or cannot be decoded; a history that does not
// replay against the registered agent gives the divergence
// (durable.ErrNondeterminism).
func (rt *Runtime) Transcript(ctx context.Context, runID string) ([]providers.Message, error) {
	for try := 1; ; try++ {
		info, err := rt.client.Describe(ctx, runID)
		if err != nil {
			return nil, err
		}
		current, err := rt.currentMessages(ctx, info)
		if err != nil {
			return nil, err
		}
		again, err := rt.client.Describe(ctx, runID)
		if err != nil {
			return nil, err
		}
		if again.Generation != info.Generation {
			// It continued as new meanwhile: what was read may be of
			// either history.
			if try < transcriptTries {
				continue
			}
			return nil, fmt.Errorf("agent: transcript of run %s: it continued as new %d times while it was read",
				runID, transcriptTries)
		}
		earlier, err := rt.archivedMessages(ctx, runID, info.Generation)
		if err != nil {
			return nil, err
		}
		return append(earlier, current...), nil
	}
}

// currentMessages returns the messages of the run's current generation;
// see Transcript.
func (rt *Runtime) currentMessages(ctx context.Context, info backend.RunInfo) ([]providers.Message, error) {
	if _, ok := rt.lookup(info.Workflow); ok {
		history, err := rt.client.History(ctx, info.ID)
		if err != nil {
			return nil, err
		}
		return rt.replayMessages(info, history)
	}
	if info.Status == backend.StatusCompleted {
		res, err := rt.Run(info.ID).Result(ctx)
		if err != nil {
			return nil, fmt.Errorf("agent: transcript of run %s: %w", info.ID, err)
		}
		return res.Messages, nil
	}
	return nil, fmt.Errorf("agent: transcript of run %s: %w: agent %q, needed to replay the history of a run that is %s",
		info.ID, durable.ErrUnregistered, info.Workflow, info.Status)
}

// replayMessages replays a run's current history against the registered
// agent and returns the messages the loop holds at its end.
func (rt *Runtime) replayMessages(info backend.RunInfo, history []backend.Event) ([]providers.Message, error) {
	var st *state
	wf := durable.NewWorkflow(info.Workflow, func(ctx durable.Context, in Input) (RunResult, error) {
		return rt.loopWith(ctx, in, func(s *state) { st = s })
	})
	if err := durable.ReplayHistory(wf, history); err != nil {
		return nil, fmt.Errorf("agent: transcript of run %s: replay its history: %w", info.ID, err)
	}
	if st == nil {
		return nil, fmt.Errorf("agent: transcript of run %s: its history holds no conversation", info.ID)
	}
	return slices.Clone(st.messages), nil
}

// archivedMessages returns the messages the run archived in generations
// 0 to generation-1, in order: two reads, the indexes, then the messages.
func (rt *Runtime) archivedMessages(ctx context.Context, runID string, generation int) ([]providers.Message, error) {
	if rt.archive == nil || generation == 0 {
		return nil, nil
	}
	keys := make([]string, generation)
	for g := range keys {
		keys[g] = indexKey(g)
	}
	indexes, err := rt.archive.GetBlobs(ctx, runID, keys)
	if err != nil {
		return nil, fmt.Errorf("agent: transcript of run %s: %w", runID, err)
	}
	var order []string // message keys, in order
	var from []int     // the generation of each
	for g, key := range keys {
		data, ok := indexes[key]
		if !ok {
			continue // the generation dropped nothing
		}
		plain, err := rt.openBlob("blob "+key, data)
		if err != nil {
			return nil, fmt.Errorf("agent: transcript of run %s: %w", runID, err)
		}
		var index transcriptIndex
		if err := json.Unmarshal(plain, &index); err != nil {
			return nil, fmt.Errorf("agent: transcript of run %s: %w: index %s: %v", runID, backend.ErrCorruptHistory, key, err)
		}
		order = append(order, index.Messages...)
		for range index.Messages {
			from = append(from, g)
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	unique := slices.Compact(slices.Sorted(slices.Values(order)))
	blobs, err := rt.archive.GetBlobs(ctx, runID, unique)
	if err != nil {
		return nil, fmt.Errorf("agent: transcript of run %s: %w", runID, err)
	}
	decoded := make(map[string]providers.Message, len(unique))
	msgs := make([]providers.Message, len(order))
	for i, key := range order {
		m, ok := decoded[key]
		if !ok {
			if m, err = rt.openMessage(key, blobs); err != nil {
				return nil, fmt.Errorf("agent: transcript of run %s: generation %d: %w", runID, from[i], err)
			}
			decoded[key] = m
		}
		msgs[i] = m
	}
	return msgs, nil
}

// openMessage decodes the message under key, checking it is the message
// its key names.
func (rt *Runtime) openMessage(key string, blobs map[string][]byte) (providers.Message, error) {
	data, ok := blobs[key]
	if !ok {
		return providers.Message{}, fmt.Errorf("%w: message %s is missing from the archive", backend.ErrCorruptHistory, key)
	}
	plain, err := rt.openBlob("blob "+key, data)
	if err != nil {
		return providers.Message{}, err
	}
	if contentKey(plain) != key {
		return providers.Message{}, fmt.Errorf("%w: message %s does not match its key", backend.ErrCorruptHistory, key)
	}
	var m providers.Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return providers.Message{}, fmt.Errorf("%w: message %s: %v", backend.ErrCorruptHistory, key, err)
	}
	return m, nil
}
