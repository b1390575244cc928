package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
)

// redisEnvWith is an env on a private redis-server, with store options,
// and the server, to look at what the store keeps.
func redisEnvWith(t *testing.T, opts agent.Options, storeOpts []redis.Option, agents ...*agent.Agent) (*env, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL(), storeOpts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return newEnvOn(t, store, opts, agents...), srv
}

// archiveKey is the Redis key of a run's archive.
func archiveKey(runID string) string { return "cairn:{r:" + runID + "}:archive" }

// line renders a message for comparison: its role, text, calls and the
// call it answers, without the ids the model gave.
func line(m providers.Message) string {
	s := string(m.Role) + ": " + m.Content
	for _, c := range m.ToolCalls {
		s += fmt.Sprintf(" [call %s %s]", c.Name, c.Arguments)
	}
	if m.ToolCallID != "" {
		s += " [answers a call]"
	}
	return s
}

func lines(msgs []providers.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = line(m)
	}
	return out
}

// contentKey is the content address of a message, as the archive keys it.
func contentKey(t *testing.T, m providers.Message) string {
	t.Helper()
	data, err := json.Marshal(m)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// conversation is what memoryModel says to a user: for each text, the
// lines of the exchange.
type conversation []string

func (c *conversation) say(text string) {
	*c = append(*c, "user: "+text)
	if strings.Contains(text, "look up") {
		*c = append(*c, `assistant:  [call lookup {"order":"A-17"}]`,
			`tool: "order A-17: shipped `+strings.Repeat("(tracking details) ", 20)+`" [answers a call]`)
	}
	*c = append(*c, "assistant: noted: "+text)
}

// transcriptAgent is a conversation agent whose memory policy compacts
// every few messages and whose conversations continue as new every four
// exchanges.
func transcriptAgent(t *testing.T, name string) (*memoryModel, *agent.Agent) {
	mm := &memoryModel{summarize: newSummary}
	return mm, &agent.Agent{Name: name, Instructions: "Be brief.", Model: mm.model(), Tools: lookupTool(t),
		Memory: &memory.Policy{MaxMessages: 6}, ConversationLimit: 4}
}

// text is the user's i-th message: "thanks" twice (so that the same
// message is said in two generations), a lookup every fifth, else a new
// text.
func text(i int) string {
	switch {
	case i == 3 || i == 17:
		return "thanks"
	case i%5 == 0:
		return fmt.Sprintf("m%d please look up my order", i)
	}
	return fmt.Sprintf("m%d %s", i, strings.Repeat("chatter ", 5))
}

// TestTranscriptOfALongConversation: a conversation of 30 exchanges under
// a memory policy, which continues as new every 4 exchanges carrying only
// the compacted state and the window: its transcript holds every message
// once, in order, at every point of the conversation and after its end;
// each generation's history stays bounded; a message said twice is stored
// once.
func TestTranscriptOfALongConversation(t *testing.T) {
	testTranscriptOfALongConversation(t, func(a *agent.Agent) (*env, func(runID string) int) {
		return newEnv(t, a), nil
	})
}

// TestRedisTranscriptOfALongConversation is the same on Redis, where the
// archive's hash fields are counted; a missing message is an error that
// names it.
func TestRedisTranscriptOfALongConversation(t *testing.T) {
	var srv *redistest.Server
	e := testTranscriptOfALongConversation(t, func(a *agent.Agent) (*env, func(runID string) int) {
		var e *env
		e, srv = redisEnvWith(t, agent.Options{}, nil, a)
		return e, func(runID string) int { return int(srv.Client().HLen(context.Background(), archiveKey(runID)).Val()) }
	})
	ctx := ctxT(t)
	keys, err := srv.Client().HKeys(ctx, archiveKey("long-1")).Result()
	require.NoError(t, err)
	var victim string
	for _, k := range keys {
		if !strings.HasPrefix(k, "transcript/") {
			victim = k
			break
		}
	}
	require.NotEmpty(t, victim)
	require.NoError(t, srv.Client().HDel(ctx, archiveKey("long-1"), victim).Err())
	_, err = e.rt.Transcript(ctx, "long-1")
	require.ErrorIs(t, err, backend.ErrCorruptHistory, "a message missing from the archive")
	assert.ErrorContains(t, err, victim, "the error names the missing message")
}

// TestClusterTranscriptOfALongConversation is the same on a Redis Cluster
// of three masters: the archive is in the run's slot, whichever master
// holds it.
func TestClusterTranscriptOfALongConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster of three masters; run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	store := redis.New(cluster.Client())
	t.Cleanup(func() { _ = store.Close() })
	testTranscriptOfALongConversation(t, func(a *agent.Agent) (*env, func(runID string) int) {
		return newEnvOn(t, store, agent.Options{}, a), func(runID string) int {
			return int(cluster.Client().HLen(context.Background(), archiveKey(runID)).Val())
		}
	})
}

func testTranscriptOfALongConversation(t *testing.T, newEnv func(*agent.Agent) (*env, func(runID string) int)) *env {
	_, a := transcriptAgent(t, "long")
	e, countBlobs := newEnv(a)
	ctx := ctxT(t)
	var want conversation
	want.say(text(0))
	run := e.startRun(a, "long-1", agent.Input{Conversation: true, Message: text(0)})
	generations := map[int]bool{}
	for i := 1; i < 30; i++ {
		r, err := say(ctx, e.rt, run.ID, text(i))
		require.NoError(t, err)
		require.Empty(t, r.Error, "exchange %d", i)
		want.say(text(i))
		got, err := e.rt.Transcript(ctx, run.ID)
		require.NoError(t, err, "transcript after exchange %d", i)
		require.Equal(t, []string(want), lines(got), "transcript after exchange %d", i)

		info, err := run.Describe(ctx)
		require.NoError(t, err)
		generations[info.Generation] = true
		history := e.history(run.ID)
		assert.Less(t, len(history), 80, "exchange %d: the history of a generation is bounded", i)
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	res := e.result(run)
	assert.Greater(t, len(generations), 5, "the conversation continued as new")

	got, err := e.rt.Transcript(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string(want), lines(got), "transcript of the ended conversation")
	for i, m := range got {
		if m.Role == providers.RoleTool {
			require.NotEmpty(t, got[i-1].ToolCalls, "message %d: a tool result after its call", i)
			assert.Equal(t, got[i-1].ToolCalls[0].ID, m.ToolCallID, "message %d: the call it answers", i)
		}
	}
	// What the last generation holds is the result's; the rest was
	// archived, "thanks" twice among it, stored once.
	require.Equal(t, lines(res.Messages), lines(got[len(got)-len(res.Messages):]), "the transcript ends with the last generation")
	archived := got[:len(got)-len(res.Messages)]
	distinct := map[string]bool{}
	thanks := 0
	for _, m := range archived {
		distinct[contentKey(t, m)] = true
		if m.Content == "thanks" {
			thanks++
		}
	}
	require.Equal(t, 2, thanks, "both thanks are archived")
	require.Less(t, len(distinct), len(archived), "a message said twice is one blob")
	arch := e.store.(backend.Archive)
	var keys []string
	for k := range distinct {
		keys = append(keys, k)
	}
	blobs, err := arch.GetBlobs(ctx, run.ID, keys)
	require.NoError(t, err)
	assert.Len(t, blobs, len(distinct), "every archived message is stored")
	info, err := run.Describe(ctx)
	require.NoError(t, err)
	var indexKeys []string
	for g := range info.Generation {
		indexKeys = append(indexKeys, fmt.Sprint("transcript/", g))
	}
	indexes, err := arch.GetBlobs(ctx, run.ID, indexKeys)
	require.NoError(t, err)
	assert.NotEmpty(t, indexes, "generations that compacted archived an index")
	if countBlobs != nil {
		assert.Equal(t, len(distinct)+len(indexes), countBlobs(run.ID), "the archive holds each message once, and the indexes")
	}
	e.replays(a, run.ID)
	return e
}

// TestRedisTranscriptCodecAndRetention: with a codec, the archive holds
// no readable message, under the same keys as without one; a reader
// without the codec gets an error, not garbage; once the run ended and
// its retention passed, its archive is gone with it.
func TestRedisTranscriptCodecAndRetention(t *testing.T) {
	_, a := transcriptAgent(t, "sealed")
	e, srv := redisEnvWith(t, agent.Options{Codec: xorCodec{}}, []redis.Option{redis.WithRetention(time.Second)}, a)
	ctx := ctxT(t)
	var want conversation
	run := e.startRun(a, "sealed-1", agent.Input{Conversation: true})
	e.waitStatus(run.ID, backend.StatusWaiting)
	for i := 1; i <= 10; i++ {
		_, err := say(ctx, e.rt, run.ID, text(i))
		require.NoError(t, err)
		want.say(text(i))
	}
	got, err := e.rt.Transcript(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string(want), lines(got))

	values, err := srv.Client().HGetAll(ctx, archiveKey(run.ID)).Result()
	require.NoError(t, err)
	require.NotEmpty(t, values)
	for k, v := range values {
		assert.True(t, strings.HasPrefix(v, "codec:xor\n"), "blob %s is sealed with the codec", k)
		for _, plain := range []string{"chatter", "noted", "user", "transcript/"} {
			assert.NotContains(t, v, plain, "blob %s is readable at rest", k)
		}
	}
	// Keys are the content addresses of the plain messages.
	first := providers.Message{Role: providers.RoleUser, Content: text(1)}
	assert.Contains(t, values, contentKey(t, first), "the first message, under its content address")

	plainReader := agent.NewRuntime(e.store, agent.Options{Logger: quietLogger()})
	require.NoError(t, plainReader.Register(a))
	_, err = plainReader.Transcript(ctx, run.ID)
	require.ErrorIs(t, err, backend.ErrCorruptHistory, "a reader without the codec")

	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := srv.Client().Exists(ctx, "cairn:{r:sealed-1}:run", archiveKey(run.ID)).Result()
		require.NoError(c, err)
		assert.Zero(c, n, "the run's record and archive")
	}, 10*time.Second, 20*time.Millisecond, "the archive did not expire with the run")
	_, err = e.rt.Transcript(ctx, run.ID)
	assert.ErrorIs(t, err, backend.ErrRunNotFound, "the transcript of an expired run")
}

// cutArchive is an in-memory store whose first PutBlobs writes its blobs,
// then waits, as a worker that dies before it records the activity's end,
// until the worker stops.
type cutArchive struct {
	*inmem.Store
	mu      sync.Mutex
	puts    []map[string][]byte
	written chan struct{}
}

func (s *cutArchive) PutBlobs(ctx context.Context, runID string, blobs map[string][]byte) error {
	s.mu.Lock()
	s.puts = append(s.puts, blobs)
	first := len(s.puts) == 1
	s.mu.Unlock()
	if err := s.Store.PutBlobs(ctx, runID, blobs); err != nil {
		return err
	}
	if first {
		close(s.written)
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// TestTranscriptArchiveSurvivesARestart: a worker stopped while it
// archives, after the blobs are written but before the activity's end is
// recorded: the next worker archives again, which changes nothing, and
// goes on; the transcript holds every message once.
func TestTranscriptArchiveSurvivesARestart(t *testing.T) {
	_, a := transcriptAgent(t, "cut")
	store := &cutArchive{Store: inmem.New(), written: make(chan struct{})}
	e := newEnvOn(t, store, agent.Options{}, a)
	ctx := ctxT(t)
	var want conversation
	run := e.startRun(a, "cut-1", agent.Input{Conversation: true})
	e.waitStatus(run.ID, backend.StatusWaiting)
	i := 1
	for ; ; i++ {
		_, err := say(ctx, e.rt, run.ID, text(i))
		require.NoError(t, err)
		want.say(text(i))
		select {
		case <-store.written:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	e.halt()
	e.start()
	for i++; i <= 12; i++ {
		_, err := say(ctx, e.rt, run.ID, text(i))
		require.NoError(t, err)
		want.say(text(i))
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	got, err := e.rt.Transcript(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string(want), lines(got))

	store.mu.Lock()
	defer store.mu.Unlock()
	require.GreaterOrEqual(t, len(store.puts), 3, "the cut put, the one after the restart, later generations")
	assert.Equal(t, store.puts[0], store.puts[1], "the archive after the restart writes what the cut one wrote")
	indexes := map[string]int{}
	for _, p := range store.puts[1:] {
		for k := range p {
			if strings.HasPrefix(k, "transcript/") {
				indexes[k]++
			}
		}
	}
	for k, n := range indexes {
		assert.Equal(t, 1, n, "index %s written by one archive after the restart", k)
	}
}

// hiddenArchive is an in-memory store that hides its archive.
type hiddenArchive struct{ backend.Store }

// failingArchive is an in-memory store whose archive refuses every put.
type failingArchive struct{ *inmem.Store }

func (failingArchive) PutBlobs(context.Context, string, map[string][]byte) error {
	return fmt.Errorf("put blobs: %w", backend.ErrRunNotFound)
}

// TestTranscriptWithoutArchive: on a store that is no backend.Archive, or
// whose archive fails, a conversation goes on as new all the same, and
// says so in the log (once for the missing archive, at Error for each
// failure); its transcript is then its current generation.
func TestTranscriptWithoutArchive(t *testing.T) {
	for name, store := range map[string]backend.Store{
		"NoArchive": hiddenArchive{inmem.New()},
		"Failing":   failingArchive{inmem.New()},
	} {
		t.Run(name, func(t *testing.T) {
			_, a := transcriptAgent(t, "unarchived")
			var logs syncBuffer
			e := &env{t: t, store: store, rt: agent.NewRuntime(store, agent.Options{
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})}
			require.NoError(t, e.rt.Register(a))
			e.start()
			t.Cleanup(e.halt)
			ctx := ctxT(t)
			run := e.startRun(a, "unarchived-1", agent.Input{Conversation: true})
			e.waitStatus(run.ID, backend.StatusWaiting)
			var want conversation
			for i := 1; i <= 13; i++ {
				r, err := say(ctx, e.rt, run.ID, text(i))
				require.NoError(t, err)
				require.Empty(t, r.Error)
				want.say(text(i))
			}
			require.NoError(t, e.rt.End(ctx, run.ID))
			res := e.result(run)
			info, err := run.Describe(ctx)
			require.NoError(t, err)
			require.Equal(t, 3, info.Generation, "the conversation continued as new")
			got, err := e.rt.Transcript(ctx, run.ID)
			require.NoError(t, err)
			assert.Equal(t, lines(res.Messages), lines(got), "the transcript is the current generation")
			assert.Less(t, len(got), len(want), "the messages compacted away are lost")
			switch name {
			case "NoArchive":
				assert.Equal(t, 1, strings.Count(logs.String(), "keeps no archive"), "logged once:\n%s", logs.String())
			case "Failing":
				assert.Equal(t, 3, strings.Count(logs.String(), "level=ERROR msg=\"archive the messages"), "logged at each continue-as-new:\n%s", logs.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTranscriptReaders: a runtime without the agent registered cannot
// rebuild a run in progress (it says so), and reads an ended run's from
// its result; a run with no conversation (one message) has a transcript
// too; an unknown run has none.
func TestTranscriptReaders(t *testing.T) {
	_, a := transcriptAgent(t, "read")
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "read-1", agent.Input{Conversation: true})
	e.waitStatus(run.ID, backend.StatusWaiting)
	var want conversation
	for i := 1; i <= 6; i++ {
		_, err := say(ctx, e.rt, run.ID, text(i))
		require.NoError(t, err)
		want.say(text(i))
	}
	e.waitStatus(run.ID, backend.StatusWaiting)
	bare := agent.NewRuntime(e.store, agent.Options{Logger: quietLogger()})
	_, err := bare.Transcript(ctx, run.ID)
	require.ErrorIs(t, err, durable.ErrUnregistered, "a run in progress, its agent unregistered")
	assert.ErrorContains(t, err, "waiting")
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	got, err := bare.Transcript(ctx, run.ID)
	require.NoError(t, err, "an ended run, its agent unregistered")
	assert.Equal(t, []string(want), lines(got))

	one := e.startRun(a, "read-2", agent.Input{Message: "m1 please look up my order"})
	e.result(one)
	got, err = e.rt.Transcript(ctx, one.ID)
	require.NoError(t, err)
	var single conversation
	single.say("m1 please look up my order")
	assert.Equal(t, []string(single), lines(got), "a run of one message")

	_, err = e.rt.Transcript(ctx, "nobody")
	assert.ErrorIs(t, err, backend.ErrRunNotFound)
}
