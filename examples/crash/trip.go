package main

// The trip agent: its tools, its scripted model, and the services the tools
// change. Workers run it; the parent only starts the run and reads what the
// services recorded.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// agentName names the agent, and the durable workflow of its runs.
const agentName = "trip_planner"

// request is what the user asks for.
const request = "Book my trip to Lisbon: a flight from Paris on 2026-05-14, a hotel for 3 nights, " +
	"pay with my card on file, and send the confirmation to ana@example.com."

// toolNames are the agent's tools, in the order the scripted model calls them.
var toolNames = []string{"reserve_flight", "reserve_hotel", "charge_card", "send_confirmation"}

// services stands for the airline, the hotel, the payment provider and the
// mailer that the tools change. Their records live in Redis, outside every
// worker process, so they survive a worker killed with SIGKILL and can be
// counted at the end.
//
// Like a payment API that takes an Idempotency-Key header, each service
// does a request's change once per key: a request with a key it has seen
// changes nothing and gets the first answer back. The tools pass the key
// of their call (tools.IdempotencyKey), which is the same for every
// attempt of the call, so a call cut off by a crash and run again by
// another worker does not book, charge or mail twice.
type services struct {
	rdb goredis.UniversalClient
	// prefix starts the keys of the services' records: a hash prefix+":refs"
	// of "tool key" to the reference the change got, and a hash
	// prefix+":counts" of "tool:effects" and "tool:calls".
	prefix string
}

// performScript does a change once per idempotency key, atomically: it
// counts the call, and unless the key has been seen it records the new
// reference and counts the change. It returns the key's reference and 1 if
// the change was made by this call.
var performScript = goredis.NewScript(`
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':calls', 1)
local field = ARGV[1] .. ' ' .. ARGV[2]
local ref = redis.call('HGET', KEYS[1], field)
if ref then
  return {ref, 0}
end
redis.call('HSET', KEYS[1], field, ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':effects', 1)
return {ARGV[3], 1}
`)

// perform makes the change of tool for idempotency key key, unless it was
// made already: ref is the reference of the change (newRef if this call
// made it), first says whether this call made it.
func (s *services) perform(ctx context.Context, tool, key, newRef string) (ref string, first bool, err error) {
	res, err := performScript.Run(ctx, s.rdb, []string{s.prefix + ":refs", s.prefix + ":counts"}, tool, key, newRef).Slice()
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", tool, err)
	}
	if len(res) != 2 {
		return "", false, fmt.Errorf("%s: unexpected reply %v", tool, res)
	}
	ref, _ = res[0].(string)
	n, _ := res[1].(int64)
	return ref, n == 1, nil
}

// effectCount is what a service recorded for one tool.
type effectCount struct {
	Effects int // changes made: bookings, charges, mails
	Calls   int // requests received, retries included
}

// counts returns what the services recorded, by tool.
func (s *services) counts(ctx context.Context) (map[string]effectCount, error) {
	raw, err := s.rdb.HGetAll(ctx, s.prefix+":counts").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]effectCount{}
	for _, name := range toolNames {
		effects, _ := strconv.Atoi(raw[name+":effects"])
		calls, _ := strconv.Atoi(raw[name+":calls"])
		out[name] = effectCount{Effects: effects, Calls: calls}
	}
	return out, nil
}

// refs returns the references of the changes made, as "tool key" -> ref.
func (s *services) refs(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.prefix+":refs").Result()
}

// The tools' arguments and results, as the model sees them.
type (
	flightArgs struct {
		From string `json:"from" jsonschema:"description=City of departure"`
		To   string `json:"to" jsonschema:"description=City of arrival"`
		Date string `json:"date" jsonschema:"description=Day of the flight, YYYY-MM-DD"`
	}
	flight struct {
		Booking  string `json:"booking"`
		Flight   string `json:"flight"`
		PriceEUR int    `json:"price_eur"`
	}
	hotelArgs struct {
		City    string `json:"city"`
		CheckIn string `json:"check_in" jsonschema:"description=Day of arrival, YYYY-MM-DD"`
		Nights  int    `json:"nights" jsonschema:"minimum=1"`
	}
	hotel struct {
		Booking  string `json:"booking"`
		Hotel    string `json:"hotel"`
		Nights   int    `json:"nights"`
		PriceEUR int    `json:"price_eur"`
	}
	chargeArgs struct {
		AmountEUR   int    `json:"amount_eur" jsonschema:"description=Amount to charge in euros,minimum=1"`
		Description string `json:"description"`
	}
	charge struct {
		Charge    string `json:"charge"`
		AmountEUR int    `json:"amount_eur"`
	}
	mailArgs struct {
		To   string `json:"to" jsonschema:"description=Email address"`
		Text string `json:"text"`
	}
	mail struct {
		MessageID string `json:"message_id"`
	}
)

// toolEnv is what the tools need in a worker process.
type toolEnv struct {
	svc *services
	say func(string) // reports progress to the parent, one line at a time
	// stallIn names a tool that, in this worker, stalls after its change
	// is made and before it returns, as if the service's reply were slow
	// to come back: the moment the parent kills the worker.
	stallIn string
}

// stallMarker, followed by a tool's name, tells the parent that the tool
// made its change and stalls.
const stallMarker = "@stalled "

// effect makes the change of tool through the services, with the call's
// idempotency key. refPrefix starts the reference of a new change.
func (e *toolEnv) effect(ctx context.Context, tool, refPrefix, what string) (string, error) {
	key, ok := tools.IdempotencyKey(ctx)
	if !ok {
		return "", tools.Fatal(errors.New("no idempotency key: the tool runs outside a run"))
	}
	info, _ := durable.ActivityInfoFrom(ctx)
	e.say(fmt.Sprintf("%s started (attempt %d, idempotency key %s)", tool, info.Attempt, key))
	ref, first, err := e.svc.perform(ctx, tool, key, refPrefix+rand.Text()[:6])
	if err != nil {
		return "", tools.Retryable(err)
	}
	if first {
		e.say(fmt.Sprintf("%s: %s -> %s", tool, what, ref))
	} else {
		e.say(fmt.Sprintf("%s: the service has seen this key: %s again, nothing done twice", tool, ref))
	}
	if tool == e.stallIn {
		e.say(fmt.Sprintf("%s: waiting for the service's reply...", tool))
		e.say(stallMarker + tool)
		<-ctx.Done() // until the parent kills the process
		return "", ctx.Err()
	}
	return ref, nil
}

// newTools returns the agent's tools. Each honours the idempotency key.
func newTools(e *toolEnv) *tools.Set {
	set, err := tools.NewSet(
		tools.MustNew("reserve_flight", "Reserve a seat on a flight.",
			func(ctx context.Context, in flightArgs) (flight, error) {
				ref, err := e.effect(ctx, "reserve_flight", "FL-", fmt.Sprintf("seat on TP 433 %s->%s on %s", in.From, in.To, in.Date))
				return flight{Booking: ref, Flight: "TP 433", PriceEUR: 212}, err
			}, tools.HonorsIdempotencyKey()),
		tools.MustNew("reserve_hotel", "Reserve a hotel room.",
			func(ctx context.Context, in hotelArgs) (hotel, error) {
				ref, err := e.effect(ctx, "reserve_hotel", "HT-", fmt.Sprintf("%d nights at Alfama Terrace from %s", in.Nights, in.CheckIn))
				return hotel{Booking: ref, Hotel: "Alfama Terrace", Nights: in.Nights, PriceEUR: 180 * in.Nights}, err
			}, tools.HonorsIdempotencyKey()),
		tools.MustNew("charge_card", "Charge the user's card on file.",
			func(ctx context.Context, in chargeArgs) (charge, error) {
				ref, err := e.effect(ctx, "charge_card", "ch_", fmt.Sprintf("charged %d EUR", in.AmountEUR))
				return charge{Charge: ref, AmountEUR: in.AmountEUR}, err
			}, tools.HonorsIdempotencyKey()),
		tools.MustNew("send_confirmation", "Email the user.",
			func(ctx context.Context, in mailArgs) (mail, error) {
				ref, err := e.effect(ctx, "send_confirmation", "msg-", "mailed "+in.To)
				return mail{MessageID: ref}, err
			}, tools.HonorsIdempotencyKey()),
	)
	if err != nil {
		panic(err)
	}
	return set
}

// newTripAgent returns the agent, on model, with tools in env.
func newTripAgent(model providers.Model, env *toolEnv) *agent.Agent {
	return &agent.Agent{
		Name: agentName,
		Instructions: "You are a travel agent. Do one step at a time: reserve the flight, then the hotel, " +
			"then charge the card for the total, then send the confirmation. Then answer with a short summary " +
			"that gives every booking reference, the charge and the message id.",
		Model: model,
		Tools: newTools(env),
	}
}

// tripModel is the scripted model: it books the trip step by step, from
// what the tools returned so far, and then answers. It is a function of the
// conversation only, so it answers the same in any process, after any
// crash.
func tripModel() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		got := toolResults(req)
		var f flight
		var h hotel
		var c charge
		var m mail
		switch {
		case !decode(got, "reserve_flight", &f):
			return callTool("reserve_flight", flightArgs{From: "Paris", To: "Lisbon", Date: "2026-05-14"}), nil
		case !decode(got, "reserve_hotel", &h):
			return callTool("reserve_hotel", hotelArgs{City: "Lisbon", CheckIn: "2026-05-14", Nights: 3}), nil
		case !decode(got, "charge_card", &c):
			return callTool("charge_card", chargeArgs{AmountEUR: f.PriceEUR + h.PriceEUR,
				Description: "Trip to Lisbon: " + f.Booking + ", " + h.Booking}), nil
		case !decode(got, "send_confirmation", &m):
			return callTool("send_confirmation", mailArgs{To: "ana@example.com",
				Text: fmt.Sprintf("Flight %s (%s), hotel %s (%s), %d EUR charged (%s).", f.Flight, f.Booking, h.Hotel, h.Booking, c.AmountEUR, c.Charge)}), nil
		}
		return providers.Response{Message: providers.Message{Content: answer(f, h, c, m)}}, nil
	})
}

// answer is the scripted model's final answer.
func answer(f flight, h hotel, c charge, m mail) string {
	return fmt.Sprintf("Your trip to Lisbon is booked: flight %s on 2026-05-14 (booking %s), %d nights at %s (booking %s), "+
		"%d EUR charged to your card (charge %s), confirmation sent to ana@example.com (message %s).",
		f.Flight, f.Booking, h.Nights, h.Hotel, h.Booking, c.AmountEUR, c.Charge, m.MessageID)
}

// toolResults returns the content of the successful tool results in req,
// by tool name.
func toolResults(req providers.Request) map[string]string {
	names := map[string]string{} // call id -> tool
	got := map[string]string{}
	for _, msg := range req.Messages {
		for _, c := range msg.ToolCalls {
			names[c.ID] = c.Name
		}
		if msg.Role == providers.RoleTool {
			got[names[msg.ToolCallID]] = msg.Content
		}
	}
	return got
}

// decode decodes tool's result into v, and reports whether there was one.
func decode(got map[string]string, tool string, v any) bool {
	content, ok := got[tool]
	return ok && json.Unmarshal([]byte(content), v) == nil
}

func callTool(name string, args any) providers.Response {
	data, _ := json.Marshal(args)
	return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: name, Arguments: string(data)}}}}
}

// narratedModel tells the parent about each model call that really
// happens: a run replayed after a crash makes none for the turns already
// journaled.
type narratedModel struct {
	providers.Model
	say func(string)
}

func (m narratedModel) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	resp, err := m.Model.Generate(ctx, req)
	turn := scripted.Turn(req)
	switch {
	case err != nil:
		m.say(fmt.Sprintf("model, turn %d: %v", turn, err))
	case len(resp.Message.ToolCalls) > 0:
		for _, c := range resp.Message.ToolCalls {
			m.say(fmt.Sprintf("model, turn %d: call %s %s", turn, c.Name, c.Arguments))
		}
	default:
		m.say(fmt.Sprintf("model, turn %d: final answer", turn))
	}
	return resp, err
}
