package redis

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts are the store's server-side scripts, each lua/lib.lua followed by
// its own file. Every key a script touches is passed in KEYS and carries
// one hash tag; times come in ARGV from the store's clock, never from
// Redis's TIME.
type scripts struct {
	create, lease, commit, send *goredis.Script // one run's keys
	archive, watch              *goredis.Script // one run's keys
	enqueue, take, settle, ack  *goredis.Script // one partition's keys
	janitor, forget             *goredis.Script // one partition's keys
	mark                        *goredis.Script // one run's hash
	actTake, actAck, actJanitor *goredis.Script // one activity queue's keys
}

func newScripts() *scripts {
	lib := mustRead("lib.lua")
	load := func(name string) *goredis.Script { return goredis.NewScript(lib + "\n" + mustRead(name)) }
	return &scripts{
		create: load("create.lua"), lease: load("lease.lua"), commit: load("commit.lua"), send: load("send.lua"),
		archive: load("archive.lua"), watch: load("watch.lua"),
		enqueue: load("enqueue.lua"), take: load("take.lua"), settle: load("settle.lua"), ack: load("ack.lua"),
		janitor: load("janitor.lua"), forget: load("forget.lua"), mark: load("mark.lua"),
		actTake: load("activity_take.lua"), actAck: load("activity_ack.lua"), actJanitor: load("activity_janitor.lua"),
	}
}

func (sc *scripts) all() []*goredis.Script {
	return []*goredis.Script{sc.create, sc.lease, sc.commit, sc.send, sc.archive, sc.watch, sc.enqueue, sc.take, sc.settle, sc.ack,
		sc.janitor, sc.forget, sc.mark, sc.actTake, sc.actAck, sc.actJanitor}
}

func mustRead(name string) string {
	data, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("durable/redis: missing embedded script " + name)
	}
	return string(data)
}

// pipe runs the commands that fill adds in one pipeline: one round trip.
// Scripts run there with EVALSHA; if Redis lost them (it restarted), pipe
// loads them and runs the whole pipeline again. So every command that is
// pipelined with a script must be harmless to run twice; the store's are
// (ZADDs of the same score, ZREMs, and enqueues that add no second task).
func (s *Store) pipe(ctx context.Context, fill func(p goredis.Pipeliner)) ([]goredis.Cmder, error) {
	for attempt := 0; ; attempt++ {
		cmds, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			fill(p)
			return nil
		})
		if attempt == 0 && noScript(cmds) {
			if err := s.loadScripts(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return cmds, err
	}
}

// run runs one script on its own: EVALSHA, or EVAL if Redis lost it.
func (s *Store) run(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (any, error) {
	return sc.Run(ctx, s.client, keys, args...).Result()
}

func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range s.scripts.all() {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("load scripts: %w", err)
		}
	}
	return nil
}

func noScript(cmds []goredis.Cmder) bool {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT")) {
			return true
		}
	}
	return false
}

// reply reads a script's array reply. The first thing that is not what
// the caller expects sticks in err and makes later reads return zero
// values, so that parsing code reads straight and checks err once: bad
// data from Redis gives an error, never a panic.
type reply struct {
	items []any
	err   error
}

func newReply(v any) *reply {
	items, ok := v.([]any)
	if !ok {
		return &reply{err: fmt.Errorf("unexpected script reply %T", v)}
	}
	return &reply{items: items}
}

func (r *reply) at(i int) any {
	if r.err != nil {
		return nil
	}
	if i >= len(r.items) {
		r.err = fmt.Errorf("script reply has %d items, want more than %d", len(r.items), i)
		return nil
	}
	return r.items[i]
}

// str reads item i as a string; a nil item (a missing field) reads "".
func (r *reply) str(i int) string {
	switch v := r.at(i).(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case nil:
		return ""
	default:
		r.fail(i, v)
		return ""
	}
}

// int reads item i as an integer, from an integer or a decimal string.
func (r *reply) int(i int) int64 {
	switch v := r.at(i).(type) {
	case int64:
		return v
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			r.fail(i, v)
		}
		return n
	case nil:
		return 0
	default:
		r.fail(i, v)
		return 0
	}
}

// list reads item i as a nested reply.
func (r *reply) list(i int) *reply {
	v := r.at(i)
	if r.err != nil {
		return &reply{err: r.err}
	}
	sub := newReply(v)
	if sub.err != nil {
		r.fail(i, v)
	}
	return sub
}

func (r *reply) fail(i int, v any) {
	if r.err == nil {
		r.err = fmt.Errorf("script reply item %d: unexpected %T %v", i, v, v)
	}
}
