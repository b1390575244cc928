package evals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
)

// Judge settings: a judge is asked to be deterministic.
const (
	judgeSeed = 7
	// DefaultJudgeThreshold is a judge's pass threshold when none is
	// given.
	DefaultJudgeThreshold = 0.5
)

// judgeInstructions tell the judge how to answer.
const judgeInstructions = `You grade the answer of an AI agent against a rubric.
Reply with one JSON object and nothing else: {"score": <a number from 0 to 1>, "label": "<one word>", "rationale": "<why, in a sentence or two>"}.`

// ErrJudge means a judge did not give a usable verdict: its model failed,
// or it did not reply with the JSON asked for, even when asked again.
// The grade is then an error, not a low score.
var ErrJudge = errors.New("judge gave no verdict")

// judgeReply is what a judge is asked to reply.
type judgeReply struct {
	Score     *float64 `json:"score"`
	Label     string   `json:"label"`
	Rationale string   `json:"rationale"`
}

// Judge makes an LLM judge: it asks model to grade the final answer
// (with the case's input and the tool calls made) against rubric, and to
// reply with JSON {"score": 0..1, "label": "...", "rationale": "..."}.
// The grade passes at threshold or above (DefaultJudgeThreshold if
// threshold is 0); the rationale is its explanation, the label its label.
//
// The request is deterministic: temperature 0 and a fixed seed, and the
// same outcome gives the same request. A reply that is not that JSON is
// sent back once, with what was wrong; a second bad reply, or a model
// error, is a grading error wrapping ErrJudge.
//
// Verdicts are cached by a hash of the request (and the model): under a
// Runner, in the runner (shared by all its judges, for the runner's
// life), so a rerun of the same trial output does not call the judge
// again; used alone, in the grader. Under a Runner, a judge's call is
// also journaled: it runs as the activity of a small durable run of its
// own ("cairn.evals.judge", run id <trial's run id>-judge-<n>-<hash>) on
// the trial's store, whose history keeps the request and the verdict.
// model must be safe for concurrent use.
func Judge(model providers.Model, rubric string, threshold float64) Grader {
	if threshold == 0 {
		threshold = DefaultJudgeThreshold
	}
	return &judge{model: model, rubric: rubric, threshold: threshold, cache: &judgeCache{}}
}

type judge struct {
	model     providers.Model
	rubric    string
	threshold float64
	cache     *judgeCache
}

// judgeCache holds verdicts by the hash of their request. It is safe for
// concurrent use; a request being judged is judged once, its other
// askers wait for it.
type judgeCache struct {
	mu    sync.Mutex
	calls map[string]*judgeCall
	// sent counts the requests sent to models, retries included.
	sent int
}

type judgeCall struct {
	done  chan struct{}
	reply judgeReply
	err   error
}

type judgeCacheKey struct{}

func withJudgeCache(ctx context.Context, c *judgeCache) context.Context {
	return context.WithValue(ctx, judgeCacheKey{}, c)
}

func (j *judge) Name() string { return "judge" }

// Grade asks the judge, or reads its cached verdict.
func (j *judge) Grade(ctx context.Context, o *Outcome) (Score, error) {
	if j.model == nil {
		return Score{}, fmt.Errorf("%w: no judge model (Runner.Judge)", ErrJudge)
	}
	req := j.request(o)
	b, err := json.Marshal(req)
	if err != nil {
		return Score{}, fmt.Errorf("judge: encode request: %w", err)
	}
	// The model is part of the key: two judges with the same rubric but
	// other models are two requests.
	model := fmt.Sprintf("%T", j.model)
	if d, ok := j.model.(providers.Describer); ok {
		info := d.Describe()
		model += "/" + info.Provider + "/" + info.Model
	}
	sum := sha256.Sum256(append(append(b, 0), model...))
	key := hex.EncodeToString(sum[:])
	cache := j.cache
	if c, ok := ctx.Value(judgeCacheKey{}).(*judgeCache); ok {
		cache = c
	}
	reply, err := cache.do(key, func() (judgeReply, error) {
		if jj, ok := ctx.Value(judgeJournalKey{}).(*judgeJournal); ok {
			return jj.ask(ctx, j, key, req)
		}
		return j.ask(ctx, req, cache)
	})
	if err != nil {
		return Score{}, err
	}
	s := verdict(*reply.Score, j.threshold, reply.Rationale)
	if reply.Label != "" {
		s.Label = reply.Label
	}
	return s, nil
}

// do returns the verdict cached under key, or computes it with fn; an
// error is not cached.
func (c *judgeCache) do(key string, fn func() (judgeReply, error)) (judgeReply, error) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]*judgeCall{}
	}
	if call, ok := c.calls[key]; ok {
		c.mu.Unlock()
		<-call.done
		if call.err == nil {
			return call.reply, nil
		}
		return c.do(key, fn) // the first asker failed: ask again
	}
	call := &judgeCall{done: make(chan struct{})}
	c.calls[key] = call
	c.mu.Unlock()
	call.reply, call.err = fn()
	if call.err != nil {
		c.mu.Lock()
		delete(c.calls, key)
		c.mu.Unlock()
	}
	close(call.done)
	return call.reply, call.err
}

func (c *judgeCache) count() {
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
}

// request is what the judge is asked about an outcome.
func (j *judge) request(o *Outcome) providers.Request {
	var b strings.Builder
	fmt.Fprintf(&b, "Rubric:\n%s\n\n", j.rubric)
	if c := o.Case; c != nil {
		if c.Message != "" {
			fmt.Fprintf(&b, "User's message:\n%s\n\n", c.Message)
		}
		for i, t := range c.Turns {
			fmt.Fprintf(&b, "User's message %d:\n%s\n\n", i+1, t)
		}
	}
	if len(o.Calls) > 0 {
		b.WriteString("Tool calls the agent made:\n")
		for _, c := range o.Calls {
			fmt.Fprintf(&b, "- %s(%s) -> %s\n", c.Tool, c.Arguments, clip(c.Result))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Agent's answer:\n%s\n", o.Text)
	if len(o.Output) > 0 {
		fmt.Fprintf(&b, "\nStructured answer:\n%s\n", o.Output)
	}
	zero, seed := 0.0, judgeSeed
	return providers.Request{
		System:   judgeInstructions,
		Messages: []providers.Message{{Role: providers.RoleUser, Content: b.String()}},
		Settings: providers.Settings{Temperature: &zero, Seed: &seed},
	}
}

// ask calls the judge model, and once more if its reply is not the JSON
// asked for.
func (j *judge) ask(ctx context.Context, req providers.Request, cache *judgeCache) (judgeReply, error) {
	var problem error
	for attempt := 1; attempt <= 2; attempt++ {
		cache.count()
		resp, err := j.model.Generate(ctx, req)
		if err != nil {
			return judgeReply{}, fmt.Errorf("%w: %w", ErrJudge, err)
		}
		reply, err := parseJudgeReply(resp.Message.Content)
		if err == nil {
			return reply, nil
		}
		problem = err
		req.Messages = append(req.Messages, resp.Message, providers.Message{Role: providers.RoleUser,
			Content: fmt.Sprintf("That reply is not usable: %v. Reply with the JSON object only.", err)})
	}
	// Asking a third time is not in the contract: not retryable.
	return judgeReply{}, durable.NonRetryable(fmt.Errorf("%w: invalid reply twice: %v", ErrJudge, problem))
}

// parseJudgeReply reads a judge's JSON reply, allowing a code fence
// around it.
func parseJudgeReply(content string) (judgeReply, error) {
	s := strings.TrimSpace(content)
	s = strings.TrimPrefix(s, "```json")
	s = strings.TrimPrefix(s, "```")
	s = strings.TrimSuffix(s, "```")
	var r judgeReply
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &r); err != nil {
		return judgeReply{}, fmt.Errorf("not JSON: %v", err)
	}
	if r.Score == nil {
		return judgeReply{}, errors.New(`no "score"`)
	}
	if *r.Score < 0 || *r.Score > 1 {
		return judgeReply{}, fmt.Errorf("score %v is outside [0,1]", *r.Score)
	}
	return r, nil
}

type judgeJournalKey struct{}

func withJudgeJournal(ctx context.Context, jj *judgeJournal) context.Context {
	return context.WithValue(ctx, judgeJournalKey{}, jj)
}

// judgeInput is the input of a journaled judge call: the judge (its
// index among those the journal was given) and the request.
type judgeInput struct {
	Judge   int               `json:"judge"`
	Request providers.Request `json:"request"`
}

// judgeJournal runs judge calls as durable runs on a trial's store: a
// workflow whose one activity is the judge's call, served by the trial's
// workers (which register workflow). It is safe for concurrent use.
type judgeJournal struct {
	client   *durable.Client
	prefix   string
	cache    *judgeCache
	workflow *durable.Workflow[judgeInput, judgeReply]

	mu     sync.Mutex
	judges []*judge
}

func newJudgeJournal(client *durable.Client, prefix string, cache *judgeCache) *judgeJournal {
	jj := &judgeJournal{client: client, prefix: prefix, cache: cache}
	call := durable.NewActivity("cairn.evals.judge", func(ctx context.Context, in judgeInput) (judgeReply, error) {
		jj.mu.Lock()
		if in.Judge < 0 || in.Judge >= len(jj.judges) {
			jj.mu.Unlock()
			return judgeReply{}, durable.NonRetryable(fmt.Errorf("%w: judge %d is not known to this process", ErrJudge, in.Judge))
		}
		j := jj.judges[in.Judge]
		jj.mu.Unlock()
		// Model errors carry their retry meaning (providers.Classify).
		return j.ask(ctx, in.Request, jj.cache)
	}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{MaximumAttempts: 3}})
	jj.workflow = durable.NewWorkflow("cairn.evals.judge", func(ctx durable.Context, in judgeInput) (judgeReply, error) {
		return durable.Execute(ctx, call, in)
	})
	return jj
}

// ask runs j's call of req as a durable run and returns its verdict.
func (jj *judgeJournal) ask(ctx context.Context, j *judge, key string, req providers.Request) (judgeReply, error) {
	jj.mu.Lock()
	n := len(jj.judges)
	jj.judges = append(jj.judges, j)
	jj.mu.Unlock()
	run, err := jj.workflow.Start(ctx, jj.client, fmt.Sprintf("%s-judge-%d-%s", jj.prefix, n, key[:16]), judgeInput{Judge: n, Request: req})
	if err != nil {
		return judgeReply{}, fmt.Errorf("%w: start: %w", ErrJudge, err)
	}
	reply, err := run.Result(ctx)
	if err != nil {
		if errors.Is(err, ErrJudge) {
			return judgeReply{}, err
		}
		return judgeReply{}, fmt.Errorf("%w: %w", ErrJudge, err)
	}
	if reply.Score == nil {
		return judgeReply{}, fmt.Errorf("%w: the journaled verdict has no score", ErrJudge)
	}
	return reply, nil
}
